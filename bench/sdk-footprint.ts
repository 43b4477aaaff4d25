/**
 * Benchmark: the device SDK's footprint (issue 5).
 * 1. Installed size of `@latchkey/device-sdk` with its dependency closure (jose, mqtt and mqtt's
 *    dependencies), walked through node_modules from the SDK's package.json.
 * 2. RSS of one connected, idle device process: a child process connects a DeviceClient to an
 *    in-process stack (the same composition `latchkey up` uses) and reports `process.memoryUsage()`
 *    after GC. Side by side, in alternated rounds: a bare Node process and a raw mqtt.js client
 *    holding the same kind of connection, all three started the same way (node + tsx loader).
 * 3. Token mint rate: `mintConnectToken` against raw `crypto.sign` ES256 of the same header and
 *    claims, in the same process, alternated rounds.
 *
 * Heavy modules are imported dynamically: the child processes run this same file and must load
 * only what they measure.
 */
import { spawn } from 'node:child_process';
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sdkClosure } from './sdk-closure.ts';
import type { BenchResult } from './types.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const CHILD_ENV = 'LATCHKEY_BENCH_FOOTPRINT_CHILD';
const RSS_ROUNDS = 3;
const IDLE_MS = 1_500;
const MINT_ROUNDS = 6;
const MINT_PER_ROUND = 2_000;

type ChildKind = 'bare' | 'mqtt' | 'sdk';
interface ChildReport {
  rss: number;
  heapUsed: number;
  external: number;
}

// ---------------------------------------------------------------- 1. installed size: bench/sdk-closure.ts

// ---------------------------------------------------------------- 2. idle RSS

/** What a child does: connect (or not), idle, GC, print its memory as one JSON line. */
async function runChild(kind: ChildKind): Promise<void> {
  const url = process.env.BENCH_MQTT_URL!;
  const deviceId = process.env.BENCH_DEVICE_ID!;
  let close: () => Promise<void> = async () => {};
  if (kind === 'sdk') {
    const { DeviceClient } = await import('@latchkey/device-sdk');
    const client = await DeviceClient.connect({ deviceId, brokerUrl: url, privateKey: process.env.BENCH_PRIVATE_KEY_PEM! });
    await client.onCommand('ping', async () => ({ pong: true }));
    close = () => client.close();
  } else if (kind === 'mqtt') {
    const mqtt = await import('mqtt');
    const client = await mqtt.connectAsync(url, {
      clientId: deviceId,
      username: deviceId,
      password: process.env.BENCH_TOKEN!,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync(`devices/${deviceId}/commands/#`, { qos: 1 });
    close = () => client.endAsync();
  }
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  gc();
  const m = process.memoryUsage();
  const report: ChildReport = { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  await close();
  process.exit(0);
}

function spawnChild(kind: ChildKind, env: Record<string, string>): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', SELF], {
      cwd: ROOT,
      env: { ...process.env, ...env, [CHILD_ENV]: kind },
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

async function measureIdleRss(): Promise<Record<ChildKind, ChildReport>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-footprint-'));
  const { startStack } = await import('../cli/src/stack.ts');
  const { resolveUpConfig } = await import('../cli/src/config.ts');
  const { createLogger } = await import('../cli/src/logger.ts');
  const { generateDeviceKeyPair, privateKeyToPem, publicKeyToPem, mintConnectToken } = await import('@latchkey/device-sdk');
  const { parsePublicKey } = await import('@latchkey/device-sdk/protocol');
  const config = resolveUpConfig({ 'http-port': '0', 'mqtt-port': '0', 'data-dir': dir, 'log-level': 'silent' }, {});
  const stack = await startStack(config, { log: createLogger('silent') });
  try {
    const results: Record<ChildKind, ChildReport[]> = { bare: [], mqtt: [], sdk: [] };
    const order: ChildKind[] = ['bare', 'mqtt', 'sdk'];
    for (let round = 0; round < RSS_ROUNDS; round++) {
      for (const kind of round % 2 === 0 ? order : [...order].reverse()) {
        // a fresh device per child, so no persistent session carries over between rounds
        const deviceId = `footprint-${kind}-${round}`;
        const pair = generateDeviceKeyPair();
        stack.registry.devices.create({ id: deviceId, key: parsePublicKey(publicKeyToPem(pair.publicKey)), metadata: {} }, 'bench');
        const { token } = await mintConnectToken({ subject: deviceId, privateKey: pair.privateKey });
        results[kind].push(
          await spawnChild(kind, {
            BENCH_MQTT_URL: stack.addresses.mqtt.url,
            BENCH_DEVICE_ID: deviceId,
            BENCH_PRIVATE_KEY_PEM: privateKeyToPem(pair.privateKey),
            BENCH_TOKEN: token,
          }),
        );
      }
    }
    const pick = (xs: ChildReport[]) => [...xs].sort((a, b) => a.rss - b.rss)[Math.floor(xs.length / 2)]!;
    return { bare: pick(results.bare), mqtt: pick(results.mqtt), sdk: pick(results.sdk) };
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

async function measureMintRates(): Promise<{ sdk: number; raw: number }> {
  const { generateDeviceKeyPair, mintConnectToken } = await import('@latchkey/device-sdk');
  const { privateKey } = generateDeviceKeyPair();
  const sdkRates: number[] = [];
  const rawRates: number[] = [];
  const runSdk = async () => {
    const start = performance.now();
    for (let i = 0; i < MINT_PER_ROUND; i++) await mintConnectToken({ subject: 'thermo-1', privateKey });
    sdkRates.push(MINT_PER_ROUND / ((performance.now() - start) / 1000));
  };
  const runRaw = async () => {
    const start = performance.now();
    for (let i = 0; i < MINT_PER_ROUND; i++) rawMint(privateKey, 'thermo-1');
    rawRates.push(MINT_PER_ROUND / ((performance.now() - start) / 1000));
  };
  await runSdk(); // warm-up, discarded
  await runRaw();
  sdkRates.length = 0;
  rawRates.length = 0;
  for (let round = 0; round < MINT_ROUNDS; round++) {
    if (round % 2 === 0) {
      await runSdk();
      await runRaw();
    } else {
      await runRaw();
      await runSdk();
    }
  }
  return { sdk: median(sdkRates), raw: median(rawRates) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * const r = await benchSdkFootprint(); console.log(r.lines.join('\n'));
 * ```
 */
export async function benchSdkFootprint(): Promise<BenchResult> {
  const closure = sdkClosure();
  const total = closure.reduce((a, p) => a + p.bytes, 0);
  const files = closure.reduce((a, p) => a + p.files, 0);
  const sdkOwn = closure[0]!;
  const biggest = [...closure].sort((a, b) => b.bytes - a.bytes).slice(0, 5);
  // mqtt declares @types/ws and @types/readable-stream as runtime dependencies: installed, never loaded
  const typesOnly = closure.filter((p) => p.name.startsWith('@types/')).reduce((a, p) => a + p.bytes, 0);
  const rss = await measureIdleRss();
  const mint = await measureMintRates();
  return {
    name: 'sdk-footprint',
    lines: [
      `installed size of @latchkey/device-sdk with its dependency closure: ${mib(total)} in ${files} files, ${closure.length} packages`,
      `  the SDK itself: ${kib(sdkOwn.bytes)}; type declarations only (@types/*): ${mib(typesOnly)}; largest: ${biggest.map((p) => `${p.name} ${kib(p.bytes)}`).join(', ')}`,
      `idle RSS after GC, median of ${RSS_ROUNDS} alternated rounds (each: node + tsx loader, ${IDLE_MS} ms idle):`,
      `  bare node process:                         ${mib(rss.bare.rss)} (heap ${mib(rss.bare.heapUsed)})`,
      `  raw mqtt.js client, connected + subscribed: ${mib(rss.mqtt.rss)} (heap ${mib(rss.mqtt.heapUsed)})`,
      `  DeviceClient, connected + onCommand:        ${mib(rss.sdk.rss)} (heap ${mib(rss.sdk.heapUsed)}); +${mib(rss.sdk.rss - rss.bare.rss)} over bare, +${mib(rss.sdk.rss - rss.mqtt.rss)} over raw mqtt.js`,
      `token mint rate, median of ${MINT_ROUNDS} alternated rounds of ${MINT_PER_ROUND}:`,
      `  mintConnectToken:          ${Math.round(mint.sdk)} tokens/s`,
      `  raw crypto.sign ES256 JWS: ${Math.round(mint.raw)} tokens/s`,
      `  ratio ${(mint.sdk / mint.raw).toFixed(3)}`,
    ],
    metrics: {
      installedBytes: total,
      installedFiles: files,
      installedPackages: closure.length,
      installedTypesOnlyBytes: typesOnly,
      sdkOwnBytes: sdkOwn.bytes,
      idleRssBareBytes: rss.bare.rss,
      idleRssMqttBytes: rss.mqtt.rss,
      idleRssSdkBytes: rss.sdk.rss,
      idleHeapSdkBytes: rss.sdk.heapUsed,
      mintPerSecondSdk: mint.sdk,
      mintPerSecondRaw: mint.raw,
      mintRatio: mint.sdk / mint.raw,
    },
  };
}

const childKind = process.env[CHILD_ENV];
if (childKind === 'bare' || childKind === 'mqtt' || childKind === 'sdk') await runChild(childKind);
