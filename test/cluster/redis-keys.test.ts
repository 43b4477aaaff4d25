/**
 * broker/src/cluster/redis-keys.ts against the installed aedes-persistence-redis: the store writes
 * real sessions through a broker node, and every key name latchkey's scripts read or clean must be
 * the one the store used. An upgrade that renames one fails here, not silently in the queue bound
 * or in forgetting a deleted device.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { LK_KEYS, STORE_KEYS } from '../../broker/src/cluster/redis-keys.ts';
import { connectPacket, publishPacket, rawConnect } from '../broker/helpers/raw-mqtt.ts';
import { waitUntil } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { startCluster, type ClusterFixture } from './helpers/cluster-fixture.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');
let fx: ClusterFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

describe.skipIf(redis.skip)(`Redis key names${redis.note}`, () => {
  it('are the ones aedes-persistence-redis 12.0.0 writes: subscriptions, queue, shared packets, wills, QoS 2 state', async () => {
    redis.assertPresent();
    expect(JSON.parse(readFileSync(new URL('../../node_modules/aedes-persistence-redis/package.json', import.meta.url), 'utf8')).version).toBe('12.0.0');
    fx = await startCluster(1);
    const f = fx;
    const node = f.nodes[0] as ClusterFixture['nodes'][0];
    const sink = await f.service('sink', { publish: [], subscribe: ['devices/+/telemetry'] });
    const c = await f.connect(0, sink.id, await sink.token(), { clean: false });
    await c.subscribeAsync('devices/+/telemetry', { qos: 1 });
    await c.endAsync();
    await node.broker.messaging.publish('devices/d-1/telemetry', Buffer.from('1'), { qos: 1, retain: false });
    const queued = await f.redis.client.lrange(STORE_KEYS.outgoing(sink.id), 0, -1);
    expect(queued).toHaveLength(1);
    expect(queued[0]?.startsWith(STORE_KEYS.packetPrefix)).toBe(true);
    expect(await f.redis.client.exists(queued[0] as string, `${queued[0]}:offlineCount`)).toBe(2);
    expect(await f.redis.client.hkeys(STORE_KEYS.subscriptions(sink.id))).toEqual(['devices/+/telemetry']);

    // a will, and an inbound QoS 2 publish left waiting for its PUBREL
    const dev = await f.device('thermo-1');
    const raw = await rawConnect(node.broker.addresses.mqtt?.port as number);
    raw.send(connectPacket({ clientId: dev.id, username: 'x', password: await dev.token(), clean: false, will: { topic: 'devices/thermo-1/state', payload: '{}', qos: 1 } }));
    expect(await raw.connack()).toBe(0);
    const qos2 = publishPacket('devices/thermo-1/telemetry', 'x', { qos: 1, messageId: 7 });
    qos2[0] = 0x34; // QoS 2
    raw.send(qos2);
    await waitUntil(async () => (await f.redis.client.exists(STORE_KEYS.incoming(dev.id))) === 1);
    const wills = await f.redis.client.lrange(STORE_KEYS.wills, 0, -1);
    expect(wills).toHaveLength(1);
    expect(wills[0]?.endsWith(STORE_KEYS.willSuffix(dev.id))).toBe(true);
    expect(await f.redis.client.exists(wills[0] as string)).toBe(1);
    expect(await f.redis.client.get(LK_KEYS.presence(dev.id))).toMatch(/^n1-[0-9a-f-]{36}:\d+$/);
    raw.socket.destroy();
  });
});
