/**
 * Broker memory per idle authenticated connection with 5,000 idle devices, side by side with the
 * same aedes without authentication (issue 4: target ≤ 1.2×). Each broker runs in its own child
 * process started with --expose-gc and reports heapUsed/RSS after GC, before and after the
 * devices connect (clean session, keepalive 0, hand-built CONNECTs from this process).
 * Before measuring, every device connects once and disconnects, in both brokers alike, so one-time
 * warm-up (JIT code, SQLite's page cache, the key cache, malloc arenas grown by the first
 * verifications) is not counted as per-connection memory. Median of 3 alternated rounds.
 */
import { connect, type Socket } from 'node:net';
import { connectPackets, makeDevices, startBrokerChild, type BrokerChild } from './broker-children.ts';
import type { BenchResult } from './types.ts';

const DEVICES = 5000;
const CONCURRENCY = 100;
const ROUNDS = 3;

interface Mem {
  heapUsed: number;
  rss: number;
  external: number;
}

function openIdle(port: number, packet: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => s.write(packet));
    s.once('data', (d: Buffer) => (d[0] === 0x20 && d[3] === 0 ? resolve(s) : reject(new Error(`CONNECT refused (${d[3]})`))));
    s.once('error', reject);
  });
}

async function openAll(child: BrokerChild, packets: readonly Buffer[]): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < packets.length; i += CONCURRENCY) {
    sockets.push(...(await Promise.all(packets.slice(i, i + CONCURRENCY).map((p) => openIdle(child.port, p)))));
  }
  return sockets;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

type PerConnection = { heap: number; rss: number };
const perConnection = (before: Mem, after: Mem, n: number): PerConnection => ({
  heap: (after.heapUsed - before.heapUsed) / n,
  rss: (after.rss - before.rss) / n,
});

/** cold: the first time every device connects; warm: the same connections again after all closed. */
async function measure(child: BrokerChild, packets: readonly Buffer[]): Promise<{ cold: PerConnection; warm: PerConnection }> {
  const before = await child.request<Mem>('mem');
  const first = await openAll(child, packets);
  await settle(500);
  const cold = perConnection(before, await child.request<Mem>('mem'), packets.length);
  for (const s of first) s.destroy();
  await settle(1500);
  const beforeWarm = await child.request<Mem>('mem');
  const second = await openAll(child, packets);
  await settle(500);
  const warm = perConnection(beforeWarm, await child.request<Mem>('mem'), packets.length);
  for (const s of second) s.destroy();
  return { cold, warm };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchBrokerMemory(): Promise<BenchResult> {
  const devices = makeDevices(DEVICES);
  const packets = await connectPackets(devices);
  const rounds = { bare: [] as { cold: PerConnection; warm: PerConnection }[], auth: [] as { cold: PerConnection; warm: PerConnection }[] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 === 0 ? (['bare', 'auth'] as const) : (['auth', 'bare'] as const)) {
      const child = await startBrokerChild(mode, devices);
      try {
        rounds[mode].push(await measure(child, packets));
      } finally {
        await child.stop();
      }
    }
  }
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
  const lines = [
    `${DEVICES} idle connections per broker (clean session, keepalive 0), memory after GC, median of ${ROUNDS} alternated rounds`,
    `  cold: the first connect of every device (includes one-time warm-up: JIT, SQLite page cache, key cache, malloc arenas)`,
    `  warm: the same ${DEVICES} connections again after all had closed (the steady-state cost of an idle connection)`,
  ];
  const metrics: Record<string, number> = {};
  let worst = 0;
  for (const phase of ['cold', 'warm'] as const) {
    const bare = { heap: median(rounds.bare.map((x) => x[phase].heap)), rss: median(rounds.bare.map((x) => x[phase].rss)) };
    const auth = { heap: median(rounds.auth.map((x) => x[phase].heap)), rss: median(rounds.auth.map((x) => x[phase].rss)) };
    const heapRatio = auth.heap / bare.heap;
    const rssRatio = auth.rss / bare.rss;
    if (phase === 'warm') worst = Math.max(heapRatio, rssRatio);
    lines.push(
      `${phase}: bare aedes heap ${kb(bare.heap)}, RSS ${kb(bare.rss)}; latchkey heap ${kb(auth.heap)}, RSS ${kb(auth.rss)} per connection; ratio heap ${heapRatio.toFixed(2)}×, RSS ${rssRatio.toFixed(2)}×`,
      `  RSS per round, bare: ${rounds.bare.map((x) => kb(x[phase].rss)).join(' ')}; latchkey: ${rounds.auth.map((x) => kb(x[phase].rss)).join(' ')}`,
    );
    Object.assign(metrics, {
      [`${phase}BareHeapBytesPerConnection`]: bare.heap,
      [`${phase}AuthHeapBytesPerConnection`]: auth.heap,
      [`${phase}BareRssBytesPerConnection`]: bare.rss,
      [`${phase}AuthRssBytesPerConnection`]: auth.rss,
      [`${phase}HeapRatio`]: heapRatio,
      [`${phase}RssRatio`]: rssRatio,
    });
  }
  lines.push(`steady-state (warm) ratio ${worst.toFixed(2)}× (target ≤ 1.2×) ${worst <= 1.2 ? 'MET' : 'NOT MET'}`);
  return { name: 'broker-memory', lines, metrics };
}
