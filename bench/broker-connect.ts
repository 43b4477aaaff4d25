/**
 * Broker CPU per authenticated CONNECT→CONNACK→DISCONNECT cycle, side by side with the same
 * aedes without authentication (issue 4: target ≤ 1.3×). Each broker runs in its own child
 * process (identical aedes options except authentication and latchkey's hooks) and is measured
 * with process.cpuUsage over a round; the clients (hand-built packets over net sockets,
 * identical bytes for both) run here. 50 concurrent connectors; rounds alternate between the
 * brokers, with the order flipped every round; the median round is reported.
 *
 * Honesty rules: every CONNECT carries a FRESH token (minted before the run, outside the
 * measured region, each used once per broker, all distinct), so no broker-side cache of
 * verified tokens could make the number; a round's CPU window closes only after a settle
 * period longer than the broker's device-status flush interval, so deferred work (batched
 * status writes, timers) is counted in the round that caused it.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintConnectToken } from '../device-sdk/src/mint-token.ts';
import type { BenchResult } from './types.ts';

const CHILD = fileURLToPath(new URL('./broker-child.ts', import.meta.url));
const CONNECTORS = 50;
const DEVICES = 500;
/** cycles per connector: warm-up, then each measured round */
const WARMUP_PER_CONNECTOR = 30;
const ROUND_PER_CONNECTOR = 30;
const ROUNDS = 6;
/** > the broker's default statusFlushInterval (1 s): the round's batched status write lands inside its window */
const SETTLE_MS = 1_500;
const DISCONNECT = Buffer.from([0xe0, 0x00]);

export interface BenchDevice {
  id: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

/** Fresh P-256 devices `bench-00000`… (ids fit aedes's default 23-character limit for the bare broker). */
export function makeDevices(n: number): BenchDevice[] {
  return Array.from({ length: n }, (_, i) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { id: `bench-${String(i).padStart(5, '0')}`, privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
  });
}

/** A hand-built MQTT 3.1.1 CONNECT (clean session, keepalive 0, username `x`, password = token). */
export function connectPacket(clientId: string, password: string): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    return Buffer.concat([len, b]);
  };
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 0]), str(clientId), str('x'), str(password)]);
  const len: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x10, ...len]), body]);
}

/** CONNECT packets with valid tokens for every device. */
export async function connectPackets(devices: readonly BenchDevice[]): Promise<Buffer[]> {
  return Promise.all(
    devices.map(async (d) => connectPacket(d.id, (await mintConnectToken({ subject: d.id, privateKey: d.privateKey, ttlSeconds: 3600 })).token)),
  );
}

export interface BrokerChild {
  mode: 'auth' | 'bare';
  port: number;
  request<T>(cmd: 'cpu' | 'mem'): Promise<T>;
  stop(): Promise<void>;
}

/** Starts a broker child (`auth` over a registry holding `devices`, or `bare` aedes) and waits for its port. */
export async function startBrokerChild(mode: 'auth' | 'bare', devices: readonly BenchDevice[]): Promise<BrokerChild> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-devices-'));
  const file = path.join(dir, 'devices.json');
  writeFileSync(file, JSON.stringify(devices.map((d) => ({ id: d.id, publicKeyPem: d.publicKeyPem }))));
  const child: ChildProcess = fork(CHILD, [mode, file], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`broker child (${mode}) exited with ${code}`)));
  });
  rmSync(dir, { recursive: true, force: true });
  return {
    mode,
    port,
    request: <T>(cmd: 'cpu' | 'mem') =>
      new Promise<T>((resolve) => {
        child.once('message', (m: Record<string, T>) => resolve(m[cmd] as T));
        child.send({ cmd });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send({ cmd: 'stop' });
      }),
  };
}

/** One CONNECT→CONNACK→DISCONNECT; resolves with the ms from TCP connect start to CONNACK. */
function cycle(port: number, connectBytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let latency = -1;
    const s = connect({ port, host: '127.0.0.1', noDelay: true });
    s.once('connect', () => s.write(connectBytes));
    s.on('data', (d: Buffer) => {
      if (latency >= 0) return;
      if (d[0] !== 0x20 || d[3] !== 0) {
        s.destroy();
        reject(new Error(`CONNECT refused (${d[3]})`));
        return;
      }
      latency = performance.now() - started;
      s.end(DISCONNECT);
    });
    s.once('error', reject);
    s.once('close', () => (latency >= 0 ? resolve(latency) : reject(new Error('closed before CONNACK'))));
  });
}

/**
 * Fresh tokens for `perConnector` cycles of each connector: connector w owns devices w, w+50, …
 * (no id is ever in use twice at once) and gets a newly minted token for every cycle.
 */
async function freshPlan(devices: readonly BenchDevice[], perConnector: number): Promise<Buffer[][]> {
  const owned = Math.floor(devices.length / CONNECTORS);
  return Promise.all(
    Array.from({ length: CONNECTORS }, (_, w) =>
      Promise.all(
        Array.from({ length: perConnector }, async (_, k) => {
          const d = devices[w + CONNECTORS * (k % owned)] as BenchDevice;
          return connectPacket(d.id, (await mintConnectToken({ subject: d.id, privateKey: d.privateKey, ttlSeconds: 3600 })).token);
        }),
      ),
    ),
  );
}

/** Each connector runs its packets one after another; resolves with every connect latency. */
async function runCycles(port: number, plan: readonly (readonly Buffer[])[]): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    plan.map(async (packets) => {
      for (const p of packets) latencies.push(await cycle(port, p));
    }),
  );
  return latencies;
}

const cpuMicros = (u: NodeJS.CpuUsage) => u.user + u.system;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export async function benchBrokerConnect(): Promise<BenchResult> {
  const devices = makeDevices(DEVICES);
  // every token minted here, before any broker starts: minting is outside every measured region
  const warmup = await freshPlan(devices, WARMUP_PER_CONNECTOR);
  const rounds = await Promise.all(Array.from({ length: ROUNDS }, () => freshPlan(devices, ROUND_PER_CONNECTOR)));
  const all = [warmup, ...rounds].flat(2);
  if (new Set(all.map((b) => b.toString('latin1'))).size !== all.length) throw new Error('bench tokens are not all distinct');
  const children = [await startBrokerChild('bare', devices), await startBrokerChild('auth', devices)];
  const stats = new Map(children.map((c) => [c.mode, { roundUs: [] as number[], latencies: [] as number[] }]));
  try {
    for (const c of children) await runCycles(c.port, warmup);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? children : [...children].reverse();
      for (const c of order) {
        const before = await c.request<NodeJS.CpuUsage>('cpu');
        const latencies = await runCycles(c.port, rounds[round] as Buffer[][]);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const after = await c.request<NodeJS.CpuUsage>('cpu');
        const s = stats.get(c.mode)!;
        s.roundUs.push((cpuMicros(after) - cpuMicros(before)) / latencies.length);
        s.latencies.push(...latencies);
      }
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
  const bare = stats.get('bare')!;
  const auth = stats.get('auth')!;
  const ratio = median(auth.roundUs) / median(bare.roundUs);
  const roundRatios = auth.roundUs.map((a, i) => a / (bare.roundUs[i] as number));
  const metrics = {
    bareCpuUsPerCycle: median(bare.roundUs),
    authCpuUsPerCycle: median(auth.roundUs),
    ratio,
    roundRatioMin: Math.min(...roundRatios),
    roundRatioMax: Math.max(...roundRatios),
    bareConnectP50Ms: pct(bare.latencies, 50),
    bareConnectP99Ms: pct(bare.latencies, 99),
    authConnectP50Ms: pct(auth.latencies, 50),
    authConnectP99Ms: pct(auth.latencies, 99),
  };
  const us = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
  return {
    name: 'broker-connect',
    lines: [
      `${CONNECTORS} concurrent connectors, ${ROUNDS} alternating rounds × ${CONNECTORS * ROUND_PER_CONNECTOR} cycles per broker (after ${CONNECTORS * WARMUP_PER_CONNECTOR} warm-up), ${DEVICES} devices, a fresh token per CONNECT`,
      `bare aedes:       ${metrics.bareCpuUsPerCycle.toFixed(0)} µs broker CPU per cycle (median round; rounds ${us(bare.roundUs)}), connect p50 ${metrics.bareConnectP50Ms.toFixed(2)} ms, p99 ${metrics.bareConnectP99Ms.toFixed(2)} ms`,
      `latchkey (auth):  ${metrics.authCpuUsPerCycle.toFixed(0)} µs broker CPU per cycle (median round; rounds ${us(auth.roundUs)}), connect p50 ${metrics.authConnectP50Ms.toFixed(2)} ms, p99 ${metrics.authConnectP99Ms.toFixed(2)} ms`,
      `ratio auth/bare:  ${ratio.toFixed(2)}× (per-round pairs ${metrics.roundRatioMin.toFixed(2)}–${metrics.roundRatioMax.toFixed(2)}×; target ≤ 1.3×) ${ratio <= 1.3 ? 'MET' : 'NOT MET'}`,
    ],
    metrics,
  };
}
