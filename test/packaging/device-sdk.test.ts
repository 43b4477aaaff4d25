/**
 * `@latchkey/device-sdk` as a real npm package (issue 9): packed with `npm pack`, installed from
 * the tarball into an empty `"type": "module"` project outside the repository, then
 * - a device written in plain JavaScript, run by plain `node`, connects to a real stack (SQLite,
 *   broker, HTTP API) and answers a command sent through the HTTP API;
 * - a TypeScript consumer (`module: nodenext`, `strict`, `skipLibCheck: false`) typechecks
 *   against the shipped declarations with the repository's TypeScript.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDeviceKeyPair, publicKeyToPem, saveKeyPair } from '@latchkey/device-sdk';
import { packAndInstallSdk, REPO_ROOT, type PackedSdk } from '../helpers/packed-sdk.ts';
import { startStack, type Stack } from '../sdk/helpers/stack.ts';

const TYPES_NODE = `@types/node@${(JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@types/node']}`;

/** A device program as its user writes it: plain JavaScript, ESM. */
const DEVICE_JS = `import { DeviceClient, loadPrivateKey } from '@latchkey/device-sdk';

const client = await DeviceClient.connect({
  deviceId: process.env.DEVICE_ID,
  brokerUrl: process.env.BROKER_URL,
  privateKey: await loadPrivateKey('keys/device.key.pem'),
});
await client.onCommand('setSetpoint', async ({ celsius }) => ({ setpoint: celsius }));
await client.publishTelemetry({ celsius: 21.5 });
console.log('ready ' + import.meta.resolve('@latchkey/device-sdk'));
process.on('SIGTERM', () => void client.close().then(() => process.exit(0)));
`;

/** A TypeScript consumer of both entry points; the @ts-expect-error lines fail if the types were \`any\`. */
const CONSUMER_TS = `import { DeviceClient, isDeviceClientError, loadPrivateKey, mintConnectToken, type DeviceClientOptions, type MintedToken } from '@latchkey/device-sdk';
import { deviceTopics } from '@latchkey/device-sdk/protocol';
import { DEFAULT_TOKEN_RULES, mintConnectToken as mintOnly } from '@latchkey/device-sdk/token';

export async function start(options: DeviceClientOptions): Promise<DeviceClient> {
  const client = await DeviceClient.connect(options);
  await client.onCommand<{ celsius: number }>('setSetpoint', async ({ celsius }) => ({ setpoint: celsius + 0.5 }));
  client.on('close', (err) => {
    if (isDeviceClientError(err, 'not_authorized')) console.error(err.code, err.returnCode);
  });
  const topic: string = deviceTopics(options.deviceId).telemetry;
  await client.publishTelemetry({ topic }, { qos: 1 });
  return client;
}

export async function token(): Promise<string> {
  const minted: MintedToken = await mintConnectToken({ subject: 'thermo-1', privateKey: await loadPrivateKey('device.key.pem'), ttlSeconds: 600 });
  // @ts-expect-error exp is a number of seconds
  const wrong: string = minted.exp;
  const light = await mintOnly({ subject: 'svc:backend', privateKey: await loadPrivateKey('svc.key.pem'), audience: DEFAULT_TOKEN_RULES.audience });
  return minted.token + wrong + light.token;
}

// @ts-expect-error deviceId is required
export const incomplete: DeviceClientOptions = { brokerUrl: 'mqtt://127.0.0.1:1883', privateKey: 'pem' };
`;

const TSCONFIG = {
  compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] },
  files: ['consumer.ts'],
};

describe('@latchkey/device-sdk packed, installed into an empty project, used from plain node and from TypeScript', () => {
  let sdk: PackedSdk;
  let stack: Stack;
  let device: ChildProcess | null = null;

  beforeAll(async () => {
    sdk = await packAndInstallSdk([TYPES_NODE]);
    stack = await startStack();
  }, 180_000);

  afterAll(async () => {
    device?.kill('SIGKILL');
    await stack?.close();
    sdk?.cleanup();
  });

  it('the tarball holds compiled JS, declarations (with maps), README, LICENSE and package.json: no tests, no build files', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/index.d.ts.map', 'dist/protocol/index.js', 'dist/protocol/index.d.ts']) {
      expect(sdk.files, f).toContain(f);
    }
    const unexpected = sdk.files.filter((f) => !['package.json', 'README.md', 'LICENSE'].includes(f) && !/^(dist|src)\//.test(f));
    expect(unexpected).toEqual([]);
    expect(sdk.files.filter((f) => /(^|\/)(test|tests|__tests__)\/|\.(test|spec)\.|tsconfig|tsbuildinfo/.test(f))).toEqual([]);
    expect(sdk.files.filter((f) => f.startsWith('dist/') && f.endsWith('.js')).length).toBeGreaterThan(20);
    expect(readFileSync(path.join(sdk.project, 'node_modules/@latchkey/device-sdk/LICENSE'), 'utf8')).toBe(readFileSync(path.join(REPO_ROOT, 'LICENSE'), 'utf8'));
  });

  it('its exports name files it ships, types first; it depends on jose and mqtt only and declares its Node versions', () => {
    const manifest = JSON.parse(readFileSync(path.join(sdk.project, 'node_modules/@latchkey/device-sdk/package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
      dependencies: Record<string, string>;
      engines: { node: string };
    };
    expect(Object.keys(manifest.exports).sort()).toEqual(['.', './errors', './protocol', './token']);
    for (const [entry, conditions] of Object.entries(manifest.exports)) {
      const shipped = Object.entries(conditions).filter(([c]) => c !== '@latchkey/source');
      expect(shipped.map(([c]) => c), entry).toEqual(['types', 'default']);
      for (const [, target] of shipped) expect(sdk.files, `${entry} -> ${target}`).toContain(target.replace(/^\.\//, ''));
    }
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['jose', 'mqtt']);
    expect(manifest.engines.node).toMatch(/>=20/);
    expect(readdirSync(path.join(sdk.project, 'node_modules/@latchkey'))).toEqual(['device-sdk']);
    for (const devOnly of ['typescript', 'tsx', 'vitest']) expect(readdirSync(path.join(sdk.project, 'node_modules')), devOnly).not.toContain(devOnly);
  });

  it('a plain-JavaScript device run by plain node connects and answers a command sent through the HTTP API', async () => {
    const http = await stack.startHttp();
    const pair = generateDeviceKeyPair();
    await saveKeyPair(path.join(sdk.project, 'keys'), pair);
    expect((await http.admin('POST', '/v1/devices', { id: 'packed-1', publicKey: publicKeyToPem(pair.publicKey) })).status).toBe(201);
    writeFileSync(path.join(sdk.project, 'main.js'), DEVICE_JS);

    const child = spawn(process.execPath, ['main.js'], {
      cwd: sdk.project,
      env: { PATH: process.env.PATH ?? '', DEVICE_ID: 'packed-1', BROKER_URL: stack.brokerUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    device = child;
    let stdout = '';
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const ready = await new Promise<string>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        const m = /^ready (.+)$/m.exec(stdout);
        if (m !== null) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`device exited ${code}: ${stderr}`)));
    });
    // the program ran the installed package, not the workspace
    expect(ready).toBe(`file://${path.join(sdk.project, 'node_modules/@latchkey/device-sdk/dist/index.js')}`);

    const reply = await http.admin('POST', '/v1/devices/packed-1/commands', { name: 'setSetpoint', params: { celsius: 19.5 }, timeoutMs: 15_000 });
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body).toMatchObject({ ok: true, result: { setpoint: 19.5 } });

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    device = null;
    expect(stderr).toBe('');
  }, 60_000);

  it('a TypeScript consumer (nodenext, strict, skipLibCheck false) typechecks against the shipped declarations', async () => {
    writeFileSync(path.join(sdk.project, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(path.join(sdk.project, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    const tsc = path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', sdk.project], { cwd: sdk.project }).then(
      () => ({ code: 0, out: '' }),
      (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? '' }),
    );
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
  }, 180_000); // skipLibCheck false checks all of @types/node: ~20 s on an idle machine
});
