/**
 * Broker CPU per authenticated CONNECT→CONNACK→DISCONNECT cycle (issue 4: latchkey ≤ 1.3× bare
 * aedes), side by side in one run for four brokers, each in its own child process with the same
 * aedes options (bench/broker-child.ts):
 * - `bare`: aedes without authentication;
 * - `floor`: aedes + only the ES256 signature check (cached KeyObject, crypto.verify) — the
 *   essential crypto, what the issue says latchkey's verify path must cost little more than;
 * - `jose`: aedes + the "straightforward jose jwtVerify" (cached KeyObject, no SQLite);
 * - `auth`: latchkey's createBroker over a SQLite registry.
 * Each is measured with process.cpuUsage over a round; the clients (hand-built packets over net
 * sockets, identical bytes for every broker) run here. 50 concurrent connectors; every round
 * runs all four brokers, the order rotated by one each round; the median round is reported.
 *
 * Honesty rules: every CONNECT carries a FRESH token (minted before the run, outside the
 * measured region, each used once per broker, all distinct), so no broker-side cache of
 * verified tokens could make the number; a round's CPU window closes only after a settle
 * period longer than the broker's device-status flush interval, so deferred work (batched
 * status writes, timers) is counted in the round that caused it. Before the warm-up each
 * authenticating broker must refuse a token with a tampered signature (CONNACK 4), so a
 * baseline that verified nothing could not pass as cheap.
 */
import { connect } from 'node:net';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';
import { BROKER_MODES, connectPacket, connectPackets, makeDevices, startBrokerChild, type BenchDevice, type BrokerChild, type BrokerMode } from './broker-children.ts';
import type { BenchResult } from './types.ts';
const CONNECTORS = 50;
const DEVICES = 500;
/** cycles per connector: warm-up, then each measured round (8 rounds: each broker runs twice in each position) */
const WARMUP_PER_CONNECTOR = 60;
const ROUND_PER_CONNECTOR = 20;
const ROUNDS = 8;
/** > the broker's default statusFlushInterval (1 s): the round's batched status write lands inside its window */
const SETTLE_MS = 1_500;
/**
 * With four brokers a broker idles up to ~14 s between its rounds, long enough for V8's memory
 * reducer to shrink its heap; its next round then paid ~2× the CPU (seen in the last slot of
 * rounds 3–6, whichever broker sat there). A busy broker never triggers the reducer, so it is off
 * in every child alike: each round measures a broker in steady state.
 */
const BROKER_NODE_FLAGS = ['--no-memory-reducer'];
const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** One CONNECT→CONNACK→DISCONNECT; resolves with the ms from TCP connect start to CONNACK. */
export function cycle(port: number, connectBytes: Buffer): Promise<number> {
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

/** The CONNACK return code a broker answers `connectBytes` with (the socket is then destroyed). */
export function connackCode(port: number, connectBytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true }, () => s.write(connectBytes));
    s.once('data', (d: Buffer) => {
      s.destroy();
      if (d[0] === 0x20 && d.length >= 4) resolve(d[3] as number);
      else reject(new Error('no CONNACK'));
    });
    s.once('error', reject);
  });
}

/** A valid token for `device` with its signature's first character changed: the signature bytes differ. */
async function tamperedPacket(device: BenchDevice): Promise<Buffer> {
  const { token } = await mintConnectToken({ subject: device.id, privateKey: device.privateKey, ttlSeconds: 3600 });
  const at = token.lastIndexOf('.') + 1;
  return connectPacket(device.id, token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1));
}

/**
 * Fresh tokens for `perConnector` cycles of each connector: connector w owns devices w, w+50, …
 * (no id is ever in use twice at once) and gets a newly minted token for every cycle.
 */
export async function freshPlan(devices: readonly BenchDevice[], perConnector: number, connectors = CONNECTORS): Promise<Buffer[][]> {
  const owned = Math.floor(devices.length / connectors);
  return Promise.all(
    Array.from({ length: connectors }, (_, w) =>
      Promise.all(
        Array.from({ length: perConnector }, async (_, k) => {
          const d = devices[w + connectors * (k % owned)] as BenchDevice;
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

export const cpuMicros = (u: NodeJS.CpuUsage) => u.user + u.system;
export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const LABELS: Record<BrokerMode, string> = {
  bare: 'bare aedes (bare):',
  floor: 'aedes + ES256 verify only (floor):',
  jose: 'aedes + jose jwtVerify (jose):',
  auth: 'latchkey (auth):',
};

export async function benchBrokerConnect(): Promise<BenchResult> {
  const devices = makeDevices(DEVICES);
  // every token minted here, before any broker starts: minting is outside every measured region
  const warmup = await freshPlan(devices, WARMUP_PER_CONNECTOR);
  const rounds = await Promise.all(Array.from({ length: ROUNDS }, () => freshPlan(devices, ROUND_PER_CONNECTOR)));
  const all = [warmup, ...rounds].flat(2);
  if (new Set(all.map((b) => b.toString('latin1'))).size !== all.length) throw new Error('bench tokens are not all distinct');
  const tampered = await tamperedPacket(devices[0] as BenchDevice);
  const children: BrokerChild[] = [];
  for (const mode of BROKER_MODES) children.push(await startBrokerChild(mode, devices, BROKER_NODE_FLAGS));
  const stats = new Map(children.map((c) => [c.mode, { roundUs: [] as number[], latencies: [] as number[] }]));
  try {
    for (const c of children) {
      if (c.mode !== 'bare' && (await connackCode(c.port, tampered)) !== 4) throw new Error(`${c.mode} broker accepted a tampered signature`);
      await runCycles(c.port, warmup);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const shift = round % children.length;
      for (const c of [...children.slice(shift), ...children.slice(0, shift)]) {
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
  return report(stats);
}

type Stats = Map<BrokerMode, { roundUs: number[]; latencies: number[] }>;

/** Per-broker lines and the ratios of issue 4, from the medians of the rounds (and each round's own pair for the ranges). */
function report(stats: Stats): BenchResult {
  const rounds = (m: BrokerMode) => stats.get(m)!.roundUs;
  const med = (m: BrokerMode) => median(rounds(m));
  const metrics: Record<string, number> = {};
  const lines = [
    `${CONNECTORS} concurrent connectors, ${ROUNDS} rounds × ${CONNECTORS * ROUND_PER_CONNECTOR} cycles per broker (order rotated each round; after ${CONNECTORS * WARMUP_PER_CONNECTOR} warm-up each), ${DEVICES} devices, a fresh token per CONNECT, the same packets for every broker`,
  ];
  const us = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
  for (const m of BROKER_MODES) {
    const { roundUs, latencies } = stats.get(m)!;
    Object.assign(metrics, { [`${m}CpuUsPerCycle`]: med(m), [`${m}ConnectP50Ms`]: pct(latencies, 50), [`${m}ConnectP99Ms`]: pct(latencies, 99) });
    roundUs.forEach((x, i) => (metrics[`${m}Round${i + 1}CpuUsPerCycle`] = x));
    lines.push(
      `${LABELS[m].padEnd(34)} ${med(m).toFixed(0)} µs broker CPU per cycle (median round; rounds ${us(roundUs)}), connect p50 ${pct(latencies, 50).toFixed(2)} ms, p99 ${pct(latencies, 99).toFixed(2)} ms`,
    );
  }
  /** a median-based figure, and the range of the same figure computed within each round */
  const figure = (key: string, f: (at: (m: BrokerMode) => number) => number, [minKey, maxKey] = [`${key}RoundMin`, `${key}RoundMax`]): string => {
    const perRound = rounds('bare').map((_, i) => f((m) => rounds(m)[i] as number)).filter(Number.isFinite);
    const value = f(med);
    Object.assign(metrics, { [key]: value, [minKey]: Math.min(...perRound), [maxKey]: Math.max(...perRound) });
    const range = perRound.length > 0 ? `${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}×` : 'n/a';
    return `${Number.isFinite(value) ? value.toFixed(2) + '×' : 'n/a'} (per round ${range})`;
  };
  const over = (a: BrokerMode) => (at: (m: BrokerMode) => number) => at(a) / at('bare');
  // (auth − bare)/(floor − bare) has no meaning when the floor's overhead is not positive
  const overhead = (at: (m: BrokerMode) => number) => (at('floor') > at('bare') ? (at('auth') - at('bare')) / (at('floor') - at('bare')) : NaN);
  const authOverBare = figure('ratio', over('auth'), ['roundRatioMin', 'roundRatioMax']);
  const met = metrics['ratio']! <= 1.3;
  lines.push(
    `ratio auth/bare:  ${authOverBare}; target ≤ 1.3× ${met ? 'MET' : 'NOT MET'}`,
    `ratio jose/bare:  ${figure('joseOverBare', over('jose'))}`,
    `ratio floor/bare: ${figure('floorOverBare', over('floor'))}`,
    `latchkey's auth overhead relative to the bare signature check's overhead, (auth − bare)/(floor − bare): ${figure('authOverheadOverFloorOverhead', overhead)} — ${(med('auth') - med('bare')).toFixed(0)} µs vs ${(med('floor') - med('bare')).toFixed(0)} µs`,
  );
  return { name: 'broker-connect', lines, metrics };
}
