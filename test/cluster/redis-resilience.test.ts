/**
 * Redis failures (docs/operations.md §Scaling out): a node cut off Redis for 2 s catches up on the
 * subscriptions made elsewhere meanwhile (stock: it silently stopped queueing for them), and a
 * Redis restart mid-run leaves the nodes alive, serving, and revoking.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cuttableProxy, startRedis, waitUntil } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { startCluster, type ClusterFixture, type ClusterNode } from './helpers/cluster-fixture.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');
let fx: ClusterFixture | null = null;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await fx?.close();
  fx = null;
  for (const c of cleanups.splice(0)) await c();
});

const caughtUp = (node: ClusterNode) => node.log.entries.filter((e) => e.msg === 'caught up with Redis after a reconnect').length;

describe.skipIf(redis.skip)(`Redis failures${redis.note}`, () => {
  it('a node cut off Redis for 2 s still queues, once back, for subscriptions made on another node meanwhile', async () => {
    redis.assertPresent();
    fx = await startCluster(1); // node B, direct
    const f = fx;
    const proxy = await cuttableProxy(f.redis.port);
    cleanups.push(() => proxy.close());
    const a = await f.addNode({ redisUrl: `redis://127.0.0.1:${proxy.port}`, nodeId: 'cut' });
    const devices = await Promise.all(Array.from({ length: 10 }, (_, k) => f.device(`late-${k}`)));
    proxy.cut(2000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const d of devices) {
      const c = await f.connect(0, d.id, await d.token(), { clean: false });
      await c.subscribeAsync(`devices/${d.id}/commands/+`, { qos: 1 });
      await c.endAsync();
    }
    await waitUntil(() => caughtUp(a) === 1, 10_000);
    for (const d of devices) await a.broker.messaging.publish(`devices/${d.id}/commands/x`, Buffer.from('while-away'), { qos: 1, retain: false });
    const queued = await Promise.all(devices.map((d) => f.redis.client.llen(`outgoing:${d.id}`)));
    expect(queued).toEqual(devices.map(() => 1));
  });

  it('a Redis restart mid-run: nodes stay up, a stream of QoS 1 messages loses nothing acknowledged, and revocation works afterwards', async () => {
    redis.assertPresent();
    const server = await startRedis({ appendonly: true });
    cleanups.push(() => server.close());
    fx = await startCluster(2, {}, { redis: server });
    const f = fx;
    const [a, b] = f.nodes as [ClusterNode, ClusterNode];
    const sink = await f.service('sink', { publish: [], subscribe: ['devices/+/telemetry'] });
    const received = new Set<string>();
    const live = await f.connect(1, sink.id, await sink.token(), { clean: false, reconnectPeriod: 200 });
    live.on('message', (_t, p) => received.add(p.toString()));
    await live.subscribeAsync('devices/+/telemetry', { qos: 1 });
    const dev = await f.device('pub-1');
    const publisher = await f.connect(0, dev.id, await dev.token(), { clean: false, reconnectPeriod: 200 });
    const acked = new Set<string>();
    let i = 0;
    let stop = false;
    const pumping = (async () => {
      while (!stop) {
        const n = String(i++);
        publisher.publish('devices/pub-1/telemetry', n, { qos: 1 }, (err) => {
          if (!err) acked.add(n);
        });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await waitUntil(() => acked.size >= 50);
    await server.stop({ save: true });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await server.start();
    await waitUntil(() => caughtUp(a) >= 1 && caughtUp(b) >= 1, 15_000);
    const afterRestart = acked.size;
    await waitUntil(() => acked.size >= afterRestart + 50, 15_000);
    stop = true;
    await pumping;
    // every publish sent is acknowledged (mqtt.js resends the ones Redis failed while it was away)
    await waitUntil(() => acked.size === i, 15_000);
    // the subscriber's queue is in Redis: reconnecting empties it
    await live.endAsync();
    const resumed = await f.connect(0, sink.id, await sink.token(), { clean: false });
    resumed.on('message', (_t, p) => received.add(p.toString()));
    await waitUntil(() => [...acked].every((k) => received.has(k)), 15_000);
    console.info(`Redis restart (AOF) mid-run: ${acked.size} acknowledged, ${[...acked].filter((k) => !received.has(k)).length} lost`);

    // revocation still ends a session on the other node
    const victim = await f.device('victim-1');
    const onB = await f.connect(1, victim.id, await victim.token());
    const closed = new Promise<number>((resolve) => onB.once('close', () => resolve(performance.now())));
    const started = performance.now();
    await f.registry.devices.update(victim.id, { blocked: true }, 'admin');
    expect((await closed) - started).toBeLessThan(1000);
    for (const node of [a, b]) expect(node.broker.ready).toBe(true);
  });
});
