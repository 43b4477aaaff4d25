/**
 * Limits that hold across nodes (protocol.md §Limits, §MQTT CONNECT; docs/operations.md §Scaling
 * out): the offline-queue bound under publishers on two nodes, a queue longer than one delivery
 * batch, single-use jti, the refused-connect throttle, and no Redis call of latchkey's own on an
 * accepted connect.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connackFor } from '../broker/helpers/raw-mqtt.ts';
import { waitUntil } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { startCluster, type ClusterFixture, type ClusterNode } from './helpers/cluster-fixture.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');
let fx: ClusterFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

const SINK_ACL = { publish: [], subscribe: ['devices/+/telemetry'] };
const portOf = (node: ClusterNode | undefined) => node?.broker.addresses.mqtt?.port as number;

/** An offline persistent subscriber `svc:sink` on devices/+/telemetry. */
async function offlineSink(f: ClusterFixture) {
  const sink = await f.service('sink', SINK_ACL);
  const c = await f.connect(0, sink.id, await sink.token(), { clean: false });
  await c.subscribeAsync('devices/+/telemetry', { qos: 1 });
  await c.endAsync();
  return sink;
}

/** `n` QoS 1 publishes through each node at once, as the backend. */
function publishThroughAll(f: ClusterFixture, n: number): Promise<unknown> {
  return Promise.all(
    f.nodes.map((node, i) =>
      (async () => {
        for (let k = 0; k < n; k++) await node.broker.messaging.publish('devices/d-1/telemetry', Buffer.from(`${i}-${k}`), { qos: 1, retain: false });
      })(),
    ),
  );
}

describe.skipIf(redis.skip)(`limits shared by the nodes${redis.note}`, () => {
  it('the offline-queue bound holds exactly with publishers on two nodes, and the drops are counted', async () => {
    redis.assertPresent();
    fx = await startCluster(2, { maxQueuedMessages: 100 });
    const sink = await offlineSink(fx);
    await publishThroughAll(fx, 300);
    expect(await fx.redis.client.llen('outgoing:svc%3Asink')).toBe(100);
    const dropped = (await Promise.all(fx.nodes.map((n) => n.metric('latchkey_broker_dropped_messages_total', { reason: 'offline_queue_full' })))).reduce((a, b) => a + b, 0);
    expect(dropped).toBe(500);
    expect((await fx.redis.client.keys('packet:*')).length).toBe(200); // 100 packets and their counts: none leaked
    const c = await fx.connect(1, sink.id, await sink.token(), { clean: false });
    const got: string[] = [];
    c.on('message', (_t, p) => got.push(p.toString()));
    await waitUntil(() => got.length === 100);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(got).toHaveLength(100);
  });

  it('a queue longer than 1,001 messages is delivered in one CONNECT', async () => {
    redis.assertPresent();
    fx = await startCluster(2, { maxQueuedMessages: 2000 });
    const sink = await offlineSink(fx);
    await publishThroughAll(fx, 600);
    expect(await fx.redis.client.llen('outgoing:svc%3Asink')).toBe(1200);
    const c = await fx.connect(1, sink.id, await sink.token(), { clean: false });
    const got = new Set<string>();
    c.on('message', (_t, p) => got.add(p.toString()));
    await waitUntil(() => got.size === 1200, 10_000);
    await waitUntil(async () => (await fx?.redis.client.llen('outgoing:svc%3Asink')) === 0);
  });

  it('with requireJti a token used on node A is refused on node B, and two nodes at once accept it once', async () => {
    redis.assertPresent();
    fx = await startCluster(2, { requireJti: true });
    const [a, b] = fx.nodes;
    const dev = await fx.device('thermo-1');
    const first = await dev.token({ jti: 'jti-1' });
    expect(await connackFor(portOf(a), { clientId: dev.id, username: 'x', password: first })).toBe(0);
    expect(await connackFor(portOf(b), { clientId: dev.id, username: 'x', password: first })).toBe(4);
    expect(await b?.metric('latchkey_broker_connects_total', { result: 'refused', reason: 'jti_replayed' })).toBe(1);
    const second = await dev.token({ jti: 'jti-2' });
    const codes = await Promise.all([a, b, a, b].map((n) => connackFor(portOf(n), { clientId: dev.id, username: 'x', password: second })));
    expect(codes.filter((c) => c === 0)).toHaveLength(1);
    expect(codes.filter((c) => c === 4)).toHaveLength(3);
  });

  it('refused connects from one address add up over the nodes: both throttle it', async () => {
    redis.assertPresent();
    fx = await startCluster(2, { authFailureLimit: 4 });
    const [a, b] = fx.nodes;
    const dev = await fx.device('thermo-1');
    const bad = { clientId: dev.id, username: 'x', password: 'not-a-token' };
    // two refusals on each node: neither reached the limit alone
    for (const n of [a, b, a, b]) expect(await connackFor(portOf(n), bad, '127.0.0.7')).toBe(4);
    const good = { clientId: dev.id, username: 'x', password: await dev.token() };
    await waitUntil(async () => (await connackFor(portOf(a), good, '127.0.0.7')) === 5);
    expect(await connackFor(portOf(b), good, '127.0.0.7')).toBe(5);
    // another address is not affected
    expect(await connackFor(portOf(b), good, '127.0.0.8')).toBe(0);
  });

  it('an accepted connect costs latchkey no Redis call but its presence, written after the CONNACK (throttle check and credentials are local)', async () => {
    redis.assertPresent();
    fx = await startCluster(1);
    const node = fx.nodes[0];
    const dev = await fx.device('thermo-1');
    expect(await connackFor(portOf(node), { clientId: dev.id, username: 'x', password: await dev.token() })).toBe(0); // warm the credential cache
    const watcher = fx.redis.client.duplicate();
    const monitor = await watcher.monitor();
    // both end here; without a listener their refused reconnects after the Redis stops are printed as unhandled 'error' events
    for (const c of [watcher, monitor]) c.on('error', () => undefined);
    const commands: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args));
    for (let i = 0; i < 10; i++) expect(await connackFor(portOf(node), { clientId: dev.id, username: 'x', password: await dev.token() })).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    monitor.disconnect();
    watcher.disconnect();
    const latchkeyKeys = new Set(commands.flat().filter((a) => a.startsWith('lk:')).map((k) => k.split(':').slice(0, 2).join(':')));
    // presence is written after the CONNACK (clientReady) and cleared on close; liveness is the node's heartbeat
    for (const k of latchkeyKeys) expect(['lk:presence', 'lk:node', 'lk:nodes']).toContain(k);
  });
});
