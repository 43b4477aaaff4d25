/**
 * No acknowledged QoS 1 message is lost when a node dies (docs/operations.md §Scaling out,
 * docs/architecture.md §Patches): SIGKILL of the publisher's node at several points of a stream,
 * SIGKILL of a persistent subscriber's node, and a takeover to another node with commands queued.
 * Real node processes. Duplicates are expected (at least once) and reported, never asserted away.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { connackOf, type TestPrincipal } from '../broker/helpers/broker-fixture.ts';
import { waitUntil } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { startProcessCluster, type NodeProcess, type ProcessCluster } from './helpers/node-processes.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');
let fx: ProcessCluster | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

const N = 2000;
const SINK_ACL = { publish: [], subscribe: ['devices/+/telemetry'] };

/** Counts what a client receives, by payload. */
function counter() {
  const seen = new Map<string, number>();
  return {
    seen,
    listen(c: MqttClient) {
      c.on('message', (_t, p) => {
        const k = p.toString();
        seen.set(k, (seen.get(k) ?? 0) + 1);
      });
    },
    duplicates: () => [...seen.values()].reduce((a, n) => a + n - 1, 0),
  };
}

/** Resumes `clientId` (clean:false) on `node` until its Redis queue is empty and nothing more arrives. */
async function drain(f: ProcessCluster, node: NodeProcess, p: TestPrincipal, got: ReturnType<typeof counter>, queueKey: string): Promise<MqttClient> {
  const c = await f.connect(node, p.id, await p.token(), { clean: false });
  got.listen(c);
  let last = -1;
  await waitUntil(async () => {
    const total = [...got.seen.values()].reduce((a, n) => a + n, 0);
    const settled = total === last && (await f.redis.client.llen(queueKey)) === 0;
    last = total;
    if (!settled) await new Promise((resolve) => setTimeout(resolve, 300));
    return settled;
  }, 30_000);
  return c;
}

/** Publishes `n` QoS 1 telemetry messages at once; `onAck` after each PUBACK. */
function stream(c: MqttClient, topic: string, n: number, onAck: (i: number) => void): Promise<void> {
  return new Promise((resolve) => {
    c.once('close', () => resolve());
    let acked = 0;
    for (let i = 0; i < n; i++) {
      c.publish(topic, String(i), { qos: 1 }, (err) => {
        if (err) return;
        onAck(i);
        if (++acked === n) resolve();
      });
    }
  });
}

// real processes under a shared machine: bounded waits inside, a generous budget outside
describe.skipIf(redis.skip)(`a node killed under load${redis.note}`, { timeout: 180_000 }, () => {
  it('SIGKILL of the publisher\'s node loses no acknowledged QoS 1 message (killed 0, 20 and 80 ms after its first PUBACK)', async () => {
    redis.assertPresent();
    fx = await startProcessCluster(2);
    const f = fx;
    const b = f.nodes[1] as NodeProcess;
    const sink = await f.service('sink', SINK_ACL);
    const dev = await f.device('pub-1');
    const results: string[] = [];
    for (const killAfterMs of [0, 20, 80]) {
      const a = f.nodes.length === 2 ? (f.nodes[0] as NodeProcess) : await f.start();
      const got = counter();
      const live = await f.connect(b, sink.id, await sink.token(), { clean: false });
      got.listen(live);
      await live.subscribeAsync('devices/+/telemetry', { qos: 1 });
      const publisher = await f.connect(a, dev.id, await dev.token());
      const acked = new Set<string>();
      let ackedAtKill = 0;
      await stream(publisher, 'devices/pub-1/telemetry', N, (i) => {
        acked.add(String(i));
        if (acked.size === 1) {
          setTimeout(() => {
            ackedAtKill = acked.size;
            a.child.kill('SIGKILL');
          }, killAfterMs);
        }
      });
      await a.exited;
      f.nodes.splice(f.nodes.indexOf(a), 1);
      await live.endAsync();
      await (await drain(f, b, sink, got, 'outgoing:svc%3Asink')).endAsync();
      const lost = [...acked].filter((k) => !got.seen.has(k)).length;
      results.push(`killed ${killAfterMs} ms after the first PUBACK (${ackedAtKill} acked then): acked ${acked.size}, received ${got.seen.size}, acked-but-lost ${lost}, received-not-acked ${[...got.seen.keys()].filter((k) => !acked.has(k)).length}, duplicates ${got.duplicates()}`);
      expect(lost, results.at(-1)).toBe(0);
      await f.redis.client.del('outgoing:svc%3Asink');
    }
    console.info(`publisher-node SIGKILL, ${N} QoS 1 each:\n  ${results.join('\n  ')}`);
  });

  it('SIGKILL of the node holding a persistent subscriber: it resumes on another node with clean=false and receives every acknowledged message', async () => {
    redis.assertPresent();
    fx = await startProcessCluster(2);
    const f = fx;
    const [a, b] = f.nodes as [NodeProcess, NodeProcess];
    const sink = await f.service('sink', SINK_ACL);
    const dev = await f.device('pub-1');
    const got = counter();
    const live = await f.connect(b, sink.id, await sink.token(), { clean: false });
    live.on('message', () => {
      if (got.seen.size === 500 && b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL');
    });
    got.listen(live);
    await live.subscribeAsync('devices/+/telemetry', { qos: 1 });
    const publisher = await f.connect(a, dev.id, await dev.token());
    const acked = new Set<string>();
    await stream(publisher, 'devices/pub-1/telemetry', N, (i) => acked.add(String(i)));
    await b.exited;
    const receivedBeforeResume = got.seen.size;
    const resumed = await drain(f, a, sink, got, 'outgoing:svc%3Asink');
    expect(connackOf(resumed).sessionPresent).toBe(true);
    await resumed.endAsync();
    const lost = [...acked].filter((k) => !got.seen.has(k)).length;
    console.info(`subscriber-node SIGKILL: ${N} published, acked ${acked.size}, received ${receivedBeforeResume} before the kill and ${got.seen.size} in all, acked-but-lost ${lost}, duplicates ${got.duplicates()}`);
    expect(acked.size).toBe(N);
    expect(lost).toBe(0);
  });

  it('a takeover A→B with the session present and QoS 1 commands queued loses none (duplicates counted)', async () => {
    redis.assertPresent();
    fx = await startProcessCluster(2);
    const f = fx;
    const [a, b] = f.nodes as [NodeProcess, NodeProcess];
    const dev = await f.device('dev-t');
    const api = await f.service('api', { publish: ['devices/+/commands/#'], subscribe: [] });
    const got = counter();
    const first = await f.connect(a, dev.id, await dev.token(), { clean: false });
    got.listen(first);
    await first.subscribeAsync('devices/dev-t/commands/+', { qos: 1 });
    const sender = await f.connect(a, api.id, await api.token());
    let acked = 0;
    const sent = stream(sender, 'devices/dev-t/commands/set', N, () => void acked++);
    // Bounds for a saturated machine, where this stream has crawled (CI: under 500 in 20 s); the
    // message says where it stood, to tell a crawl from a stall.
    const where = async () => `acked ${acked}, received ${got.seen.size} distinct, Redis queue ${await f.redis.client.llen('outgoing:dev-t')}`;
    await waitUntil(() => got.seen.size >= N / 4, 60_000, where);
    const beforeTakeover = got.seen.size;
    const second = await f.connect(b, dev.id, await dev.token(), { clean: false });
    expect(second.connected).toBe(true);
    expect(connackOf(second).sessionPresent).toBe(true);
    got.listen(second);
    await sent;
    await waitUntil(() => got.seen.size === N, 60_000, where);
    await waitUntil(async () => (await f.redis.client.llen('outgoing:dev-t')) === 0, 20_000, where);
    console.info(`takeover A→B with ${N} QoS 1 commands streaming: ${beforeTakeover} received on A before it, ${got.seen.size} distinct in all, lost ${N - got.seen.size}, duplicates ${got.duplicates()}`);
    expect(N - got.seen.size).toBe(0);
  });
});
