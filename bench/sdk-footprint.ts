/**
 * Benchmark: the device SDK's footprint as a user installs it (issues 5 and 9).
 * 1. Installed size: `npm pack -w device-sdk`, `npm install <tarball>` into an empty project
 *    (test/helpers/packed-sdk.ts), and the size of the SDK's dependency closure there
 *    (bench/sdk-closure.ts). Beside it,
 *    the classic Cloud IoT Core device recipe installed the same way: mqtt.js + jsonwebtoken.
 * 2. RSS of one connected, idle device process under plain node (no loader), in alternated rounds,
 *    each child run from its project: a bare node process; a raw mqtt.js client; a DeviceClient of
 *    the installed package; the Cloud IoT Core recipe (jsonwebtoken mints an ES256 token, mqtt.js
 *    connects with it); and a process that only imports the SDK. All connect to one in-process stack
 *    (the composition `latchkey up` uses) and subscribe to their commands.
 * 3. Token mint rate: `mintConnectToken` against raw `crypto.sign` ES256 of the same header and
 *    claims and against jsonwebtoken's `sign`, in the same process, alternated rounds.
 */
import { spawn } from 'node:child_process';
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installProject, packAndInstallSdk } from '../test/helpers/packed-sdk.ts';
import { closureOf, packageClosure, summarize, type Installed } from './sdk-closure.ts';
import type { BenchResult } from './types.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RSS_ROUNDS = 3;
const IDLE_MS = 1_500;
const MINT_ROUNDS = 6;
const MINT_PER_ROUND = 2_000;
const RSS_TARGET_BYTES = 3 * 2 ** 20;

type ChildKind = 'bare' | 'sdk-import' | 'mqtt' | 'sdk' | 'cloud-iot';
const KINDS: ChildKind[] = ['bare', 'sdk-import', 'mqtt', 'sdk', 'cloud-iot'];
interface ChildReport {
  rss: number;
  heapUsed: number;
  external: number;
}

// ---------------------------------------------------------------- 2. idle RSS

/**
 * What a child does (plain JavaScript, run by plain node from its project): load and connect (or
 * not), idle, GC, print its memory as one JSON line.
 */
const CHILD_SCRIPT = `const kind = process.argv[2];
const { BENCH_MQTT_URL: url, BENCH_DEVICE_ID: deviceId, BENCH_PRIVATE_KEY_PEM: pem, BENCH_TOKEN: token } = process.env;
let close = async () => {};
if (kind === 'sdk-import') {
  await import('@latchkey/device-sdk');
} else if (kind === 'sdk') {
  const { DeviceClient } = await import('@latchkey/device-sdk');
  const client = await DeviceClient.connect({ deviceId, brokerUrl: url, privateKey: pem });
  await client.onCommand('ping', async () => ({ pong: true }));
  close = () => client.close();
} else if (kind === 'mqtt' || kind === 'cloud-iot') {
  const mqtt = await import('mqtt');
  let password = token;
  if (kind === 'cloud-iot') {
    // the Cloud IoT Core device samples: jsonwebtoken signs {iat, exp, aud} with ES256 (plus sub for latchkey)
    const { default: jwt } = await import('jsonwebtoken');
    const iat = Math.floor(Date.now() / 1000);
    password = jwt.sign({ sub: deviceId, aud: 'latchkey', iat, exp: iat + 3600 }, pem, { algorithm: 'ES256' });
  }
  const client = await mqtt.connectAsync(url, { clientId: deviceId, username: deviceId, password, clean: false, protocolVersion: 4, reconnectPeriod: 0 });
  await client.subscribeAsync('devices/' + deviceId + '/commands/#', { qos: 1 });
  close = () => client.endAsync();
}
await new Promise((r) => setTimeout(r, ${IDLE_MS}));
globalThis.gc();
globalThis.gc();
const m = process.memoryUsage();
process.stdout.write(JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, external: m.external }) + '\\n');
await close();
process.exit(0);
`;

function spawnChild(kind: ChildKind, project: string, env: Record<string, string>): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', 'footprint-child.mjs', kind], {
      cwd: project,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${kind} child exited ${code}: ${err.slice(-1000)}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ChildReport);
    });
  });
}

async function measureIdleRss(projects: { sdk: string; recipe: string }): Promise<Record<ChildKind, ChildReport>> {
  for (const p of Object.values(projects)) writeFileSync(path.join(p, 'footprint-child.mjs'), CHILD_SCRIPT);
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-footprint-'));
  const { startStack } = await import('../cli/src/stack.ts');
  const { resolveUpConfig } = await import('../cli/src/config.ts');
  const { createLogger } = await import('../cli/src/logger.ts');
  const { generateDeviceKeyPair, privateKeyToPem, publicKeyToPem, mintConnectToken } = await import('@latchkey/device-sdk');
  const { parsePublicKey } = await import('@latchkey/device-sdk/protocol');
  const config = resolveUpConfig({ 'http-port': '0', 'mqtt-port': '0', 'data-dir': dir, 'log-level': 'silent' }, {});
  const stack = await startStack(config, { log: createLogger('silent') });
  try {
    const results = Object.fromEntries(KINDS.map((k) => [k, [] as ChildReport[]])) as Record<ChildKind, ChildReport[]>;
    for (let round = 0; round < RSS_ROUNDS; round++) {
      for (const kind of round % 2 === 0 ? KINDS : [...KINDS].reverse()) {
        // a fresh device per child, so no persistent session carries over between rounds
        const deviceId = `footprint-${kind}-${round}`;
        const pair = generateDeviceKeyPair();
        await stack.registry.devices.create({ id: deviceId, key: parsePublicKey(publicKeyToPem(pair.publicKey)), metadata: {} }, 'bench');
        const { token } = await mintConnectToken({ subject: deviceId, privateKey: pair.privateKey });
        results[kind].push(
          await spawnChild(kind, kind === 'cloud-iot' ? projects.recipe : projects.sdk, {
            BENCH_MQTT_URL: stack.addresses.mqtt?.url as string,
            BENCH_DEVICE_ID: deviceId,
            BENCH_PRIVATE_KEY_PEM: privateKeyToPem(pair.privateKey),
            BENCH_TOKEN: token,
          }),
        );
      }
    }
    const pick = (xs: ChildReport[]) => [...xs].sort((a, b) => a.rss - b.rss)[Math.floor(xs.length / 2)]!;
    return Object.fromEntries(KINDS.map((k) => [k, pick(results[k])])) as Record<ChildKind, ChildReport>;
  } finally {
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- 3. mint rate

const b64u = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** The baseline: the same compact ES256 JWS, built and signed by hand with node:crypto. */
function rawMint(privateKey: KeyObject, subject: string): string {
  const iat = Math.floor(Date.now() / 1000);
  const input = `${b64u(JSON.stringify({ alg: 'ES256', typ: 'JWT' }))}.${b64u(JSON.stringify({ sub: subject, aud: 'latchkey', iat, exp: iat + 3600 }))}`;
  return `${input}.${b64u(cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;
}

async function measureMintRates(): Promise<{ sdk: number; raw: number; jsonwebtoken: number }> {
  const { generateDeviceKeyPair, mintConnectToken, privateKeyToPem } = await import('@latchkey/device-sdk');
  const { default: jwt } = await import('jsonwebtoken');
  const { privateKey } = generateDeviceKeyPair();
  const pem = privateKeyToPem(privateKey);
  const contenders: Record<'sdk' | 'raw' | 'jsonwebtoken', () => Promise<unknown> | unknown> = {
    sdk: () => mintConnectToken({ subject: 'thermo-1', privateKey }),
    raw: () => rawMint(privateKey, 'thermo-1'),
    // as the Cloud IoT Core samples call it: the key as PEM, so jsonwebtoken parses it every time
    jsonwebtoken: () => {
      const iat = Math.floor(Date.now() / 1000);
      return jwt.sign({ sub: 'thermo-1', aud: 'latchkey', iat, exp: iat + 3600 }, pem, { algorithm: 'ES256' });
    },
  };
  const names = Object.keys(contenders) as (keyof typeof contenders)[];
  const rates = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<keyof typeof contenders, number[]>;
  for (let round = -1; round < MINT_ROUNDS; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      const start = performance.now();
      for (let i = 0; i < MINT_PER_ROUND; i++) await contenders[name]();
      if (round >= 0) rates[name].push(MINT_PER_ROUND / ((performance.now() - start) / 1000)); // round -1 is a warm-up
    }
  }
  return { sdk: median(rates.sdk), raw: median(rates.raw), jsonwebtoken: median(rates.jsonwebtoken) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const signedMib = (n: number) => `${n >= 0 ? '+' : '−'}${mib(Math.abs(n))}`;

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * const r = await benchSdkFootprint(); console.log(r.lines.join('\n'));
 * ```
 */
export async function benchSdkFootprint(): Promise<BenchResult> {
  const versions = {
    mqtt: (JSON.parse(readFileSync(path.join(ROOT, 'device-sdk/package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies.mqtt!,
    jsonwebtoken: (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.jsonwebtoken!,
  };
  const sdk = await packAndInstallSdk();
  try {
    const recipeDir = path.join(sdk.root, 'cloud-iot-recipe');
    await installProject(recipeDir, [`mqtt@${versions.mqtt}`, `jsonwebtoken@${versions.jsonwebtoken}`]);
    const installedSdk = summarize(packageClosure('@latchkey/device-sdk', sdk.project));
    const installedRecipe = summarize(closureOf(['mqtt', 'jsonwebtoken'], recipeDir));
    const rss = await measureIdleRss({ sdk: sdk.project, recipe: recipeDir });
    const mint = await measureMintRates();
    const overMqtt = rss.sdk.rss - rss.mqtt.rss;
    const row = (label: string, r: ChildReport) => `  ${label.padEnd(44)} ${mib(r.rss)} (heap ${mib(r.heapUsed)}); ${signedMib(r.rss - rss.bare.rss)} over bare, ${signedMib(r.rss - rss.mqtt.rss)} over raw mqtt.js`;
    const sized = (x: Installed) => `${mib(x.bytes)} in ${x.files} files, ${x.packages} packages (type declarations only, @types/*: ${mib(x.typesOnly)})`;
    return {
      name: 'sdk-footprint',
      lines: [
        `installed with npm from the packed tarball into an empty project (dependency closure):`,
        `  @latchkey/device-sdk:               ${sized(installedSdk)}; the SDK itself ${kib(installedSdk.own)}`,
        `  Cloud IoT Core recipe (mqtt@${versions.mqtt} + jsonwebtoken@${versions.jsonwebtoken}): ${sized(installedRecipe)}`,
        `  largest in the SDK's: ${installedSdk.largest.map((p) => `${p.name} ${kib(p.bytes)}`).join(', ')}`,
        `idle RSS after GC under plain node, median of ${RSS_ROUNDS} alternated rounds (${IDLE_MS} ms idle, connected + subscribed to its commands):`,
        `  ${'bare node process:'.padEnd(44)} ${mib(rss.bare.rss)} (heap ${mib(rss.bare.heapUsed)})`,
        row('SDK imported, not connected:', rss['sdk-import']),
        row('raw mqtt.js client:', rss.mqtt),
        row('DeviceClient (installed package):', rss.sdk),
        row('Cloud IoT Core recipe (jsonwebtoken + mqtt.js):', rss['cloud-iot']),
        `  DeviceClient over raw mqtt.js: ${signedMib(overMqtt)} (target ≤ +${mib(RSS_TARGET_BYTES)}) ${overMqtt <= RSS_TARGET_BYTES ? 'OK' : 'NOT MET'}`,
        `token mint rate, median of ${MINT_ROUNDS} alternated rounds of ${MINT_PER_ROUND}:`,
        `  mintConnectToken:                 ${Math.round(mint.sdk)} tokens/s`,
        `  raw crypto.sign ES256 JWS:        ${Math.round(mint.raw)} tokens/s (ratio ${(mint.sdk / mint.raw).toFixed(3)})`,
        `  jsonwebtoken.sign ES256 (PEM key): ${Math.round(mint.jsonwebtoken)} tokens/s (ratio ${(mint.sdk / mint.jsonwebtoken).toFixed(2)})`,
      ],
      metrics: {
        installedBytes: installedSdk.bytes,
        installedFiles: installedSdk.files,
        installedPackages: installedSdk.packages,
        installedTypesOnlyBytes: installedSdk.typesOnly,
        sdkOwnBytes: installedSdk.own,
        recipeInstalledBytes: installedRecipe.bytes,
        recipeInstalledPackages: installedRecipe.packages,
        idleRssBareBytes: rss.bare.rss,
        idleRssSdkImportBytes: rss['sdk-import'].rss,
        idleRssMqttBytes: rss.mqtt.rss,
        idleRssSdkBytes: rss.sdk.rss,
        idleRssCloudIotBytes: rss['cloud-iot'].rss,
        idleHeapSdkBytes: rss.sdk.heapUsed,
        idleRssSdkOverMqttBytes: overMqtt,
        mintPerSecondSdk: mint.sdk,
        mintPerSecondRaw: mint.raw,
        mintPerSecondJsonwebtoken: mint.jsonwebtoken,
        mintRatio: mint.sdk / mint.raw,
      },
    };
  } finally {
    sdk.cleanup();
  }
}
