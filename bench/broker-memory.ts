/**
 * Broker memory per idle authenticated connection with 5,000 idle devices, side by side with the
 * same aedes without authentication (issue 4: target ≤ 1.2×). Each broker runs in its own child
 * process started with --expose-gc and reports heapUsed/RSS after GC, before and after the
 * devices connect (clean session, keepalive 0, hand-built CONNECTs from this process).
 */
import { connect, type Socket } from 'node:net';
import { connectPackets, makeDevices, startBrokerChild, type BrokerChild } from './broker-connect.ts';
import type { BenchResult } from './types.ts';

const DEVICES = 5000;
const CONCURRENCY = 100;

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

async function measure(child: BrokerChild, packets: readonly Buffer[]): Promise<{ before: Mem; after: Mem }> {
  const before = await child.request<Mem>('mem');
  const sockets: Socket[] = [];
  for (let i = 0; i < packets.length; i += CONCURRENCY) {
    sockets.push(...(await Promise.all(packets.slice(i, i + CONCURRENCY).map((p) => openIdle(child.port, p)))));
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = await child.request<Mem>('mem');
  for (const s of sockets) s.destroy();
  return { before, after };
}

export async function benchBrokerMemory(): Promise<BenchResult> {
  const devices = makeDevices(DEVICES);
  const packets = await connectPackets(devices);
  const results = new Map<string, { heap: number; rss: number }>();
  for (const mode of ['bare', 'auth'] as const) {
    const child = await startBrokerChild(mode, devices);
    try {
      const { before, after } = await measure(child, packets);
      results.set(mode, { heap: (after.heapUsed - before.heapUsed) / DEVICES, rss: (after.rss - before.rss) / DEVICES });
    } finally {
      await child.stop();
    }
  }
  const bare = results.get('bare')!;
  const auth = results.get('auth')!;
  const heapRatio = auth.heap / bare.heap;
  const rssRatio = auth.rss / bare.rss;
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
  return {
    name: 'broker-memory',
    lines: [
      `${DEVICES} idle connections per broker (clean session, keepalive 0), measured after GC`,
      `bare aedes:      heap ${kb(bare.heap)}, RSS ${kb(bare.rss)} per connection`,
      `latchkey (auth): heap ${kb(auth.heap)}, RSS ${kb(auth.rss)} per connection`,
      `ratio auth/bare: heap ${heapRatio.toFixed(2)}×, RSS ${rssRatio.toFixed(2)}× (target ≤ 1.2×) ${Math.max(heapRatio, rssRatio) <= 1.2 ? 'MET' : 'NOT MET'}`,
    ],
    metrics: {
      bareHeapBytesPerConnection: bare.heap,
      authHeapBytesPerConnection: auth.heap,
      bareRssBytesPerConnection: bare.rss,
      authRssBytesPerConnection: auth.rss,
      heapRatio,
      rssRatio,
    },
  };
}
