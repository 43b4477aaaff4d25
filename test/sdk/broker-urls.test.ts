/**
 * The SDK with several broker URLs (docs/sdk.md): where it starts (the injected random), where it
 * moves on a lost connection or a failed attempt, that a token refresh stays put, and that a node
 * killed under a fleet strands none of its devices nor loses their acknowledged telemetry.
 */
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient, ServiceClient } from '@latchkey/device-sdk';
import { BrokerUrls } from '../../device-sdk/src/session/broker-urls.ts';
import { startCluster, type ClusterFixture } from '../cluster/helpers/cluster-fixture.ts';
import { startProcessCluster, type NodeProcess, type ProcessCluster } from '../cluster/helpers/node-processes.ts';
import { waitUntil } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';

/** A small deterministic PRNG (mulberry32): each device draws its own start. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('BrokerUrls', () => {
  it('starts at the URL the random draw names, moves round robin, and points mqtt.js at each URL in turn', () => {
    const urls = new BrokerUrls(['mqtt://10.0.0.1:1883', 'mqtts://node-b.example:8884', 'wss://node-c.example/mqtt?x=1'], () => 0.5);
    expect(urls.current).toBe('mqtts://node-b.example:8884');
    const options: Record<string, unknown> = {};
    urls.applyTo(options);
    expect(options).toMatchObject({ protocol: 'mqtts', hostname: 'node-b.example', host: 'node-b.example', port: 8884, servername: 'node-b.example' });
    urls.next();
    urls.applyTo(options);
    expect(options).toMatchObject({ protocol: 'wss', hostname: 'node-c.example', port: 443, path: '/mqtt?x=1', servername: 'node-c.example' });
    urls.next();
    urls.applyTo(options);
    expect(options).toMatchObject({ protocol: 'mqtt', hostname: '10.0.0.1', port: 1883, path: undefined, servername: undefined });
    expect(new BrokerUrls(['mqtt://a', 'mqtt://b'], () => 0.999999).current).toBe('mqtt://b');
    const named = new BrokerUrls(['mqtts://10.0.0.2'], () => 0, 'broker.example');
    named.applyTo(options);
    expect(options).toMatchObject({ port: 8883, servername: 'broker.example' });
  });

  it('refuses an empty list and a bad URL in a list (caller misuse: TypeError)', async () => {
    const base = { deviceId: 'thermo-1', privateKey: 'x' };
    await expect(DeviceClient.connect({ ...base, brokerUrl: [] })).rejects.toThrow(TypeError);
    await expect(DeviceClient.connect({ ...base, brokerUrl: ['mqtt://a', 'http://b'] })).rejects.toThrow(/mqtt:, mqtts:, ws: or wss:/);
  });
});

const redis = requireTools(['redis-server'], 'apt-get install redis-server');

describe.skipIf(redis.skip)(`several broker URLs against a cluster${redis.note}`, { timeout: 90_000 }, () => {
  let fx: ClusterFixture | null = null;
  let processes: ProcessCluster | null = null;
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c().catch(() => undefined);
    await fx?.close();
    await processes?.close();
    fx = null;
    processes = null;
  });

  it('skips a dead URL, moves to the next node when its node goes, and stays on its node for a token refresh', async () => {
    redis.assertPresent();
    fx = await startCluster(2);
    const f = fx;
    const dead = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => dead.close(resolve)));
    const dev = await f.device('thermo-1');
    const [a, b] = f.nodes as [ClusterFixture['nodes'][0], ClusterFixture['nodes'][0]];
    const client = await DeviceClient.connect({
      deviceId: dev.id,
      brokerUrl: [`mqtt://127.0.0.1:${(dead.address() as AddressInfo).port}`, a.url, b.url],
      privateKey: dev.privateKey,
      random: () => 0, // starts at the dead one
      backoff: { initialMs: 50, maxMs: 200 },
      tokenTtlSeconds: 3,
      clock: f.clock,
    });
    closers.push(() => client.close());
    expect(a.broker.sessionCount).toBe(1);
    // a refresh (at 80-90 % of 3 s) reconnects to the same node
    const refreshed = new Promise<void>((resolve) => client.once('token-refresh', () => resolve()));
    f.clock.advance(2900);
    await refreshed;
    expect(a.broker.sessionCount).toBe(1);
    expect(client.stats.tokenRefreshes).toBe(1);
    // node A goes: the client moves to B
    await a.broker.close();
    await waitUntil(() => client.connected && b.broker.sessionCount === 1, 10_000);
  });

  it('a node SIGKILLed under a fleet strands none of its devices, and loses none of their acknowledged telemetry', async () => {
    redis.assertPresent();
    processes = await startProcessCluster(3);
    const p = processes;
    const urls = p.nodes.map((n) => n.url);
    const sinkId = await p.service('sink', { publish: [], subscribe: ['devices/+/telemetry'] });
    const received = new Set<string>();
    const sink = await ServiceClient.connect({ serviceName: 'sink', brokerUrl: urls, privateKey: sinkId.privateKey, clock: p.clock, backoff: { initialMs: 100, maxMs: 500 } });
    closers.push(() => sink.close());
    await sink.subscribe('devices/+/telemetry', (_t, payload) => void received.add(payload.toString()));
    const FLEET = 9;
    const fleet = await Promise.all(
      Array.from({ length: FLEET }, async (_, i) => {
        const d = await p.device(`fleet-${i}`);
        const client = await DeviceClient.connect({ deviceId: d.id, brokerUrl: urls, privateKey: d.privateKey, random: seeded(i + 1), backoff: { initialMs: 100, maxMs: 500 }, clock: p.clock });
        closers.push(() => client.close());
        return client;
      }),
    );
    const nodeOf = async (i: number) => ((await p.redis.client.get(`lk:presence:fleet-${i}`)) ?? '').split('-')[0];
    await waitUntil(async () => (await Promise.all(fleet.map((_, i) => nodeOf(i)))).every((n) => n !== ''));
    const spread = await Promise.all(fleet.map((_, i) => nodeOf(i)));
    expect(new Set(spread).size).toBeGreaterThan(1); // the draws spread the fleet
    // the node holding most of the fleet goes
    const count = (id: string) => spread.filter((n) => n === id).length;
    const victim = [...p.nodes].sort((x, y) => count(y.nodeId) - count(x.nodeId))[0] as NodeProcess;
    const onVictim = count(victim.nodeId);

    const acked = new Set<string>();
    let stop = false;
    const pumps = fleet.map(async (client, i) => {
      for (let seq = 0; !stop; seq++) {
        const key = `${i}:${seq}`;
        void client.publishTelemetry({ key }).then(() => acked.add(JSON.stringify({ key })), () => undefined);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await victim.kill('SIGKILL');
    const killedAt = Date.now();
    await waitUntil(async () => fleet.every((c) => c.connected) && (await Promise.all(fleet.map((_, i) => nodeOf(i)))).every((n) => n !== victim.nodeId), 20_000);
    const recoveredMs = Date.now() - killedAt;
    await new Promise((resolve) => setTimeout(resolve, 500));
    stop = true;
    await Promise.all(pumps);
    await waitUntil(() => fleet.every((c) => c.stats.queued === 0 && c.stats.inflight === 0), 10_000);
    await waitUntil(() => [...acked].every((k) => received.has(k)), 10_000);
    console.info(`fleet of ${FLEET} on 3 nodes, ${onVictim} on the killed one: all back on live nodes ${recoveredMs} ms after the kill; ${acked.size} telemetry acknowledged, 0 lost`);
  });
});
