/**
 * `latchkey import gcp` against a running `latchkey up --gcp-project` (docs/migrating-from-cloud-iot-core.md
 * §Import): dry run, import, the same file again, a refused file (exit code, every refused device on
 * a line of its own, nothing stored), and the --json result.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLine, runLatchkey, startUp, tempDir, type RunningStack } from './cli-process.ts';

const EXPORT = JSON.parse(readFileSync(new URL('../fixtures/gcp/export-1000.json', import.meta.url), 'utf8')) as { id: string; credentials: { publicKey: { key: string } }[] }[];

describe('latchkey import gcp', { timeout: 90_000 }, () => {
  const tmp = tempDir('import-gcp');
  let stack: RunningStack;
  const cli = (...args: string[]) => runLatchkey([...args, '--url', stack.httpUrl], { cwd: tmp.dir });
  beforeAll(async () => {
    stack = await startUp(['--gcp-project', 'acme-iot-prod'], { cwd: tmp.dir });
    writeFileSync(path.join(tmp.dir, 'fleet.json'), JSON.stringify(EXPORT.slice(0, 20)));
    const bad = structuredClone(EXPORT.slice(20, 25));
    (bad[2] as { id: string }).id = 'bad id';
    (bad[4] as { credentials: unknown[] }).credentials = [];
    writeFileSync(path.join(tmp.dir, 'bad.json'), JSON.stringify(bad));
  });
  afterAll(async () => {
    await stack?.stop();
    tmp.cleanup();
  });

  it('dry run, import, and the same file again', async () => {
    const dry = await cli('import', 'gcp', 'fleet.json', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.trim()).toBe('would import 20 device(s), 0 unchanged (dry run: nothing stored)');
    const imported = await cli('import', 'gcp', 'fleet.json');
    expect(imported.stdout.trim()).toBe('imported 20 device(s), 0 unchanged');
    const again = await cli('import', 'gcp', 'fleet.json', '--json');
    expect(JSON.parse(again.stdout)).toEqual({ imported: 0, unchanged: 20, refused: [], dryRun: false });
    const shown = JSON.parse((await cli('devices', 'show', EXPORT[0]!.id)).stdout);
    expect(shown.gcp).toMatchObject({ project: 'acme-iot-prod' });
  });

  it('an imported device connects to latchkey up with its Cloud IoT Core client id and an RS256 token', async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const device = {
      id: 'gate-1',
      name: 'projects/acme-iot-prod/locations/us-central1/registries/fleet-z/devices/4242',
      credentials: [{ publicKey: { format: 'RSA_PEM', key: key.publicKey.export({ type: 'spki', format: 'pem' }) } }],
      config: { version: '2', binaryData: Buffer.from('open').toString('base64') },
    };
    writeFileSync(path.join(tmp.dir, 'gate.json'), JSON.stringify(device));
    expect((await cli('import', 'gcp', 'gate.json')).code).toBe(0);
    const now = Math.floor(Date.now() / 1000);
    const c = await mqtt.connectAsync(stack.mqttUrl, {
      clientId: 'projects/acme-iot-prod/locations/us-central1/registries/fleet-z/devices/4242',
      username: 'unused',
      password: jwt.sign({ iat: now, exp: now + 1200, aud: 'acme-iot-prod' }, key.privateKey, { algorithm: 'RS256' }),
      reconnectPeriod: 0,
    });
    const config = new Promise<Buffer>((resolve) => c.on('message', (topic, payload) => topic === '/devices/gate-1/config' && resolve(payload)));
    await c.subscribeAsync('/devices/gate-1/config', { qos: 1 });
    expect((await config).toString()).toBe('open');
    await c.endAsync();
  });

  it('a file with bad devices: exit code, every refused device named, nothing stored', async () => {
    const r = await cli('import', 'gcp', 'bad.json');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^refused bad id: invalid_device_id: /m);
    expect(r.stderr).toMatch(new RegExp(`^refused ${EXPORT[24]!.id}: credential_missing: `, 'm'));
    expect(errorLine(r.stderr)?.code).toBe('import_rejected');
    const gone = await cli('devices', 'show', EXPORT[20]!.id);
    expect(gone.code).not.toBe(0);
  });
});
