import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceClient, ServiceClient, isDeviceMessageError, mintConnectToken, privateKeyToPem, signDeviceMessage, verifyDeviceMessage, type DeviceKeySource } from '@latchkey/device-sdk';
import { closeAll, startStack, waitFor, type Stack, type TestIdentity } from './helpers/stack.ts';

/**
 * The done-when of issue 15: an independent consumer — Python with PyJWT and cryptography from
 * Debian, written from docs/protocol.md alone (examples/python-consumer/verify_messages.py) —
 * verifies messages the SDK signed, fetching key histories from the API as a service account with
 * an API token PyJWT mints, and refuses every tampered copy with the code the SDK's verifier gives.
 */

const SCRIPT = new URL('../../examples/python-consumer/verify_messages.py', import.meta.url).pathname;

/** The first Python 3 that has PyJWT and cryptography (Debian's, which a pyenv shim may hide). */
function findPython(): string | null {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(candidate, ['-c', 'import jwt, cryptography'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  return null;
}
const python = findPython();
const INSTALL = 'apt-get install python3-jwt python3-cryptography';
if (python === null && process.env.CI !== 'true') console.warn(`skipped, no python3 with PyJWT and cryptography (${INSTALL})`);

let stack: Stack;
const closers: (() => Promise<unknown>)[] = [];
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await closeAll(closers);
  await stack.close();
});

interface Verdict {
  ok: boolean;
  code?: string;
  deviceId?: string;
  seq?: number;
  kid?: string;
  body?: string;
}

/** Runs the script (asynchronously: the API it asks lives in this process) with `messages` as JSON lines. */
async function runPython(args: string[], messages: { topic: string; payload: Buffer }[]): Promise<Verdict[]> {
  const child = spawn(python as string, [SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  child.stdin.end(messages.map((m) => JSON.stringify({ topic: m.topic, payload: m.payload.toString('base64') })).join('\n'));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(stderr).toBe('');
  expect(status).toBe(0);
  return stdout.trim().split('\n').map((line) => JSON.parse(line) as Verdict);
}

describe.skipIf(python === null && process.env.CI !== 'true')(`a Python consumer (PyJWT + cryptography) reading only protocol.md${python === null ? ` [needs ${INSTALL}]` : ''}`, () => {
  it('verifies what the SDK signed, over the broker, and refuses each tampered copy like the SDK does', async () => {
    expect(python, `CI=true and no python3 with PyJWT and cryptography (${INSTALL})`).not.toBeNull();
    const { url, admin } = await stack.startHttp();
    const a = await stack.device('thermo-a');
    const b = await stack.device('thermo-b');
    const lake = await stack.service('lake', { publish: ['devices/+/telemetry/#', 'devices/+/state'], subscribe: ['devices/+/telemetry/#', 'devices/+/state', 'devices/+/replies/+'] });
    const keyFile = path.join(stack.dir, 'lake.key.pem');
    writeFileSync(keyFile, privateKeyToPem(lake.privateKey), { mode: 0o600 });

    // the lake service account receives, and (as a compromised bridge would) re-publishes altered copies
    const svc = await ServiceClient.connect({ serviceName: 'lake', brokerUrl: stack.brokerUrl, privateKey: lake.privateKey, provisioningUrl: url });
    closers.push(() => svc.close());
    const inbox: { topic: string; payload: Buffer }[] = [];
    for (const f of ['devices/+/telemetry/#', 'devices/+/state', 'devices/+/replies/+']) await svc.subscribe(f, (topic, payload) => void inbox.push({ topic, payload }));
    const commander = await ServiceClient.connect({
      serviceName: 'cmd',
      brokerUrl: stack.brokerUrl,
      privateKey: (await stack.service('cmd', { publish: ['devices/+/commands/#'], subscribe: [] })).privateKey,
    });
    closers.push(() => commander.close());

    const device = await DeviceClient.connect({ deviceId: 'thermo-a', brokerUrl: stack.brokerUrl, privateKey: a.privateKey, signMessages: true });
    closers.push(() => device.close());
    await device.onCommand('ping', () => ({ pong: 'é' }));
    await device.publishTelemetry({ celsius: 21.5, note: 'ünïcode ✓' });
    await device.publishTelemetry(Buffer.from([0, 1, 2, 253, 254, 255]), { subtopic: 'raw/bytes' });
    await device.reportState({ mode: 'heat' });
    await commander.publish('devices/thermo-a/commands/ping', { id: 'c-1', params: {} });
    await waitFor(() => inbox.length === 4);
    const genuine = [...inbox];
    const [first] = genuine as [{ topic: string; payload: Buffer }];
    const jws = first.payload.toString('latin1');
    const [h, p, s] = jws.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const withClaims = (c: object) => `${h}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.${s}`;
    const tampered: [string, string | Buffer][] = [
      ['devices/thermo-a/telemetry', withClaims({ ...claims, body: Buffer.from('{"celsius":99}').toString('base64url') })],
      ['devices/thermo-a/telemetry/boiler', jws],
      ['devices/thermo-b/telemetry', jws],
      ['devices/thermo-a/telemetry', jws],
      ['devices/thermo-a/telemetry', await signDeviceMessage({ deviceId: 'thermo-a', topic: 'devices/thermo-a/telemetry', payload: {}, seq: 2 ** 52, privateKey: b.privateKey })],
      ['devices/thermo-a/telemetry', '{"celsius":21.5}'],
      ['devices/thermo-a/telemetry', (await mintConnectToken({ subject: 'thermo-a', privateKey: a.privateKey })).token],
    ];
    for (const [topic, payload] of tampered) await svc.publish(topic, payload);
    await waitFor(() => inbox.length === genuine.length + tampered.length);

    const fromPython = await runPython(['--url', url, '--service', 'lake', '--key', keyFile], inbox);
    const fromSdk: string[] = [];
    for (const m of inbox) {
      try {
        await svc.verifyDeviceMessage(m.topic, m.payload);
        fromSdk.push('ok');
      } catch (e) {
        fromSdk.push(isDeviceMessageError(e) ? e.code : String(e));
      }
    }
    const expected = ['ok', 'ok', 'ok', 'ok', 'signature_invalid', 'topic_mismatch', 'signature_invalid', 'message_replayed', 'signature_invalid', 'message_malformed', 'header_invalid'];
    expect(fromPython.map((v) => (v.ok ? 'ok' : v.code))).toEqual(expected);
    expect(fromSdk).toEqual(expected);
    const kid = (await admin('GET', '/v1/devices/thermo-a')).body.credentials[0].kid;
    expect(fromPython.slice(0, 4).map((v) => [v.deviceId, v.kid, Buffer.from(v.body as string, 'base64')])).toEqual([
      ['thermo-a', kid, Buffer.from('{"celsius":21.5,"note":"ünïcode ✓"}')],
      ['thermo-a', kid, Buffer.from([0, 1, 2, 253, 254, 255])],
      ['thermo-a', kid, Buffer.from('{"mode":"heat"}')],
      ['thermo-a', kid, Buffer.from('{"ok":true,"result":{"pong":"é"}}')],
    ]);
    const seqs = fromPython.slice(0, 4).map((v) => v.seq as number);
    expect(seqs.map((q) => q - seqs[0]!)).toEqual([0, 1, 2, 3]);
  });

  it('applies the key history: a message dated after its key was removed is refused, one dated before is not', async () => {
    expect(python).not.toBeNull();
    const a = await stack.device('thermo-a');
    const now = Date.now();
    const removedAt = Math.floor(now / 1000) * 1000 - 60_000; // a whole second: the message signed at it is dated at its removal
    const history = { 'thermo-a': { keys: [{ kid: 'k-1', publicKey: a.publicKeyPem, createdAt: now - 3_600_000, removedAt, expiresAt: null }] } };
    const keysFile = path.join(stack.dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify(history));
    const topic = 'devices/thermo-a/telemetry';
    const sign = (at: number, seq: number) => signDeviceMessage({ deviceId: 'thermo-a', topic, payload: { at }, seq, privateKey: a.privateKey, clock: () => at });
    const messages = [
      { topic, payload: Buffer.from(await sign(removedAt - 1_000, 1)) },
      { topic, payload: Buffer.from(await sign(removedAt, 2)) },
      { topic, payload: Buffer.from(await sign(now - 7_200_000, 3)) },
      { topic, payload: Buffer.from(await sign(now + 330_000, 4)) },
    ];
    const expected = ['ok', 'credential_removed', 'credential_not_yet_valid', 'message_issued_in_future'];
    expect((await runPython(['--keys-file', keysFile], messages)).map((v) => (v.ok ? 'ok' : v.code))).toEqual(expected);
    const keys: DeviceKeySource = { keysOf: async (id) => (id === 'thermo-a' ? history['thermo-a'].keys : null) };
    const sdk: string[] = [];
    for (const m of messages) {
      sdk.push(await verifyDeviceMessage(m.topic, m.payload, { keys, replay: null }).then(() => 'ok', (e: { code: string }) => e.code));
    }
    expect(sdk).toEqual(expected);
  });
});
