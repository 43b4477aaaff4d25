/**
 * Does CONNECT timing tell whether a device id exists? (issue 16, finding 3: a junk-signed token
 * was refused with CONNACK 4 either way, but a registered id took 0.13–0.33 ms longer at the
 * median over 300 samples.) Target: the median difference within noise, < 0.02 ms over 1,000
 * interleaved samples.
 *
 * latchkey's broker runs in a child process over a SQLite registry (bench/broker-child.ts `auth`,
 * throttling off so every attempt is fully checked). Each sample opens a TCP connection, then
 * times from writing a CONNECT to reading its CONNACK. Every CONNECT carries a freshly minted token
 * with correct claims signed by a stranger's key (what a prober without the device key sends).
 * Ids follow one naming scheme and only the even-numbered ones are registered, so an unknown id
 * sits among known ones (`bench-00001` between `bench-00000` and `bench-00002`), as a prober
 * guessing a fleet's ids would pick them. Two scenarios, each 1,000 rounds after 200 warm-up
 * rounds; every round probes each series once, in a random order (seeded):
 * - `warm`: the same registered id, a second registered id (the control: two series that cannot
 *   differ by existence, so their difference is the noise floor), and the same unknown id — a
 *   prober repeating attempts.
 * - `cold`: a registered id never probed before and an unknown id never probed before — a prober
 *   sweeping ids, each lookup a miss of the broker's caches.
 * Reported: each series' median, the difference of medians, and the median of the per-round
 * differences; for warm also the control pair.
 *
 * Loopback round trips on a shared 2-core machine carry ~0.1 ms of jitter, so over 1,000 samples
 * the standard error of a difference of medians is ~10 µs: the TCP figures can only show the
 * difference is within that noise. The second part measures the broker's own work, where a
 * difference could come from, without the network: the same `authenticate` hook over the same kind
 * of SQLite registry, in this process, 1,000 interleaved rounds per scenario.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from 'aedes';
import { DEFAULT_TOKEN_RULES, parsePublicKey } from '@latchkey/device-sdk/protocol';
import { createAuthenticate } from '../broker/src/auth/authenticate.ts';
import { CredentialCache } from '../broker/src/auth/credential-cache.ts';
import { FailureThrottle } from '../broker/src/auth/failure-throttle.ts';
import { RefusalLog } from '../broker/src/auth/refusal-log.ts';
import { SessionTable } from '../broker/src/auth/session-table.ts';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';
import { openRegistry } from '../provisioning/src/registry/index.ts';
import { connectPacket, makeDevices, startBrokerChild, type BenchDevice } from './broker-children.ts';
import type { BenchResult } from './types.ts';

const ROUNDS = 1_000;
const WARMUP = 200;
const TARGET_MS = 0.02;

/** mulberry32: a small seeded PRNG, so the interleaving is the same every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Connects, then resolves with the ms from writing `packet` to reading the CONNACK (which must be 4). */
function probe(port: number, packet: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true });
    let started = 0;
    s.once('connect', () => {
      started = performance.now();
      s.write(packet);
    });
    s.once('data', (d: Buffer) => {
      const ms = performance.now() - started;
      s.destroy();
      if (d[0] === 0x20 && d[3] === 4) resolve(ms);
      else reject(new Error(`expected CONNACK 4, got ${d.toString('hex')}`));
    });
    s.once('error', reject);
  });
}

const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
/** A token with correct claims for `id`, signed by a key that is not the device's. */
const junk = async (id: string): Promise<string> => (await mintConnectToken({ subject: id, privateKey: stranger, ttlSeconds: 3600 })).token;

type Probe = (clientId: string, token: string) => Promise<number>;

/** Runs rounds of the given series (each a function from round index to client id), interleaved. */
async function rounds(run: Probe, series: Record<string, (round: number) => string>, count: number, random: () => number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(series).map((k) => [k, []]));
  for (let r = 0; r < count; r++) {
    const tokens = await Promise.all(Object.entries(series).map(async ([name, idOf]) => [name, idOf(r), await junk(idOf(r))] as const));
    for (const [name, clientId, token] of shuffle([...tokens], random)) out[name]!.push(await run(clientId, token));
  }
  return out;
}

/**
 * The broker's own work for one CONNECT: latchkey's `authenticate` hook (the same steps, cache
 * and registry as createBroker wires) called in this process; a plain record stands in for the
 * aedes client. Resolves with the ms until the hook answered.
 */
async function hookProbe(devices: readonly BenchDevice[]): Promise<{ probe: Probe; close(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-timing-'));
  const registry = await openRegistry(path.join(dir, 'bench.db'), { clock: Date.now });
  await registry.devices.createMany(devices.map((d) => ({ id: d.id, key: parsePublicKey(d.publicKeyPem) })), 'bench');
  const refusals = new RefusalLog();
  const authenticate = createAuthenticate({
    rules: DEFAULT_TOKEN_RULES,
    clock: Date.now,
    credentials: new CredentialCache(registry, 2048, () => {}),
    throttle: new FailureThrottle({ limit: 0, windowMs: 60_000, capacity: 10 }),
    feedDownForMs: () => 0,
    jtis: null,
    sessions: new SessionTable(() => {}),
    unavailable: () => false,
    supersede: () => {},
    emptyClientIds: new WeakSet(),
    remoteAddressOf: () => '127.0.0.1',
    timeoutMs: 5_000,
    observeVerify: () => {},
    onAccepted: () => {},
    onRefused: (failure, notice) => void refusals.add(failure, notice),
  });
  let count = 0;
  const probe: Probe = (clientId, token) => {
    const client = { id: clientId, closed: false, clean: true, _will: null, conn: {} } as unknown as Client;
    const password = Buffer.from(token);
    return new Promise((resolve, reject) => {
      const started = performance.now();
      authenticate(client, 'x', password, (err) => {
        const ms = performance.now() - started;
        if ((err as { returnCode?: number } | null)?.returnCode !== 4) reject(new Error('expected a refusal with CONNACK 4'));
        // what the broker's timer does, outside the measured region
        if (++count % 100 === 0) void registry.recordLastErrors(refusals.drain(Date.now()).lastErrors);
        resolve(ms);
      });
    });
  };
  return {
    probe,
    async close() {
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function compare(a: readonly number[], b: readonly number[]): { diffOfMedians: number; medianOfDiffs: number } {
  return { diffOfMedians: median(b) - median(a), medianOfDiffs: median(a.map((x, i) => (b[i] as number) - x)) };
}

interface Scenarios {
  warm: Record<string, number[]>;
  cold: Record<string, number[]>;
}

/** Both scenarios against one broker (ids: even numbers registered, odd ones not). */
async function scenarios(run: Probe, all: readonly BenchDevice[], random: () => number): Promise<Scenarios> {
  const id = (n: number) => all[n]!.id;
  // warm: repeated probes of the same ids
  const warmSeries = { known: () => id(0), control: () => id(2), unknown: () => id(1) };
  await rounds(run, warmSeries, WARMUP, random);
  const warm = await rounds(run, warmSeries, ROUNDS, random);
  // cold: each id probed once (the warm-up uses ids of its own, so every measured lookup is a miss)
  await rounds(run, { known: (r) => id(4 + 2 * r), unknown: (r) => id(5 + 2 * r) }, WARMUP, random);
  const cold = await rounds(run, { known: (r) => id(4 + 2 * (WARMUP + r)), unknown: (r) => id(5 + 2 * (WARMUP + r)) }, ROUNDS, random);
  return { warm, cold };
}

const µs = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
const signed = (ms: number) => `${ms >= 0 ? '+' : ''}${µs(ms)}`;

/** Report lines and metrics of one part; returns the largest |difference of medians| between known and unknown. */
function report(part: string, s: Scenarios, lines: string[], metrics: Record<string, number>): number {
  const pair = (label: string, a: number[], b: number[]) => {
    const c = compare(a, b);
    lines.push(`  ${label.padEnd(30)} difference of medians ${signed(c.diffOfMedians)}, median of per-round differences ${signed(c.medianOfDiffs)}`);
    return c;
  };
  lines.push(`${part}: warm medians known ${µs(median(s.warm.known!))}, control ${µs(median(s.warm.control!))}, unknown ${µs(median(s.warm.unknown!))}`);
  const warm = pair('warm, unknown − known:', s.warm.known!, s.warm.unknown!);
  const noise = pair('warm, control − known (noise):', s.warm.known!, s.warm.control!);
  lines.push(`${part}: cold medians known ${µs(median(s.cold.known!))}, unknown ${µs(median(s.cold.unknown!))}`);
  const cold = pair('cold, unknown − known:', s.cold.known!, s.cold.unknown!);
  Object.assign(metrics, {
    [`${part}WarmKnownMs`]: median(s.warm.known!),
    [`${part}WarmUnknownMs`]: median(s.warm.unknown!),
    [`${part}WarmDiffMs`]: warm.diffOfMedians,
    [`${part}WarmPairedDiffMs`]: warm.medianOfDiffs,
    [`${part}WarmNoiseMs`]: noise.diffOfMedians,
    [`${part}ColdKnownMs`]: median(s.cold.known!),
    [`${part}ColdUnknownMs`]: median(s.cold.unknown!),
    [`${part}ColdDiffMs`]: cold.diffOfMedians,
    [`${part}ColdPairedDiffMs`]: cold.medianOfDiffs,
  });
  return Math.max(Math.abs(warm.diffOfMedians), Math.abs(cold.diffOfMedians));
}

export async function benchConnectTiming(): Promise<BenchResult> {
  // bench-00000 … : even numbers registered, odd ones not
  const all = makeDevices(2 * (2 + WARMUP + ROUNDS));
  const registered = all.filter((_, i) => i % 2 === 0);
  const lines: string[] = [`${ROUNDS} interleaved rounds per scenario after ${WARMUP} warm-up rounds; every token junk-signed, every answer CONNACK 4`];
  const metrics: Record<string, number> = {};

  const child = await startBrokerChild('auth', registered, [], { authFailureLimit: 0 });
  let tcp: number;
  try {
    const overTcp: Probe = (_clientId, token) => probe(child.port, connectPacket(_clientId, token));
    tcp = report('tcp', await scenarios(overTcp, all, prng(16)), lines, metrics);
  } finally {
    await child.stop();
  }
  const hook = await hookProbe(registered);
  let own: number;
  try {
    own = report('hook', await scenarios(hook.probe, all, prng(17)), lines, metrics);
  } finally {
    await hook.close();
  }
  lines.push(`largest |difference of medians|: over TCP ${µs(tcp)}, the broker's own work ${µs(own)} (target < ${µs(TARGET_MS)}) ${Math.max(tcp, own) < TARGET_MS ? 'OK' : 'NOT MET'}`);
  return { name: 'connect-timing', lines, metrics };
}
