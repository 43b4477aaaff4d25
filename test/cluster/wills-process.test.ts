/**
 * The wills of a node that dies (docs/operations.md §Scaling out): published once each, by one
 * surviving node, never for a device that is already back or was revoked meanwhile, and without
 * taking the surviving nodes down (stock aedes's replay crashed every one of them under an ACL
 * that refuses a will without a client). Real node processes, one SIGKILLed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { startProcessCluster, type NodeProcess, type ProcessCluster } from './helpers/node-processes.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');
let fx: ProcessCluster | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

const WILLS = 20;
const BACK = 5;
const REVOKED = 2;

describe.skipIf(redis.skip)(`wills of a killed node${redis.note}`, { timeout: 90_000 }, () => {
  it(`SIGKILL of a node holding ${WILLS} wills: ${BACK} devices back elsewhere and ${REVOKED} revoked get none, the other ${WILLS - BACK - REVOKED} exactly one each`, async () => {
    redis.assertPresent();
    fx = await startProcessCluster(3);
    const f = fx;
    const [a, b, c] = f.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const watcher = await f.service('watch', { publish: [], subscribe: ['devices/+/state'] });
    const watch = await f.connect(b, watcher.id, await watcher.token());
    const published = new Map<string, number>();
    watch.on('message', (topic) => published.set(topic, (published.get(topic) ?? 0) + 1));
    await watch.subscribeAsync('devices/+/state', { qos: 1 });
    const devices = await Promise.all(Array.from({ length: WILLS }, (_, i) => f.device(`will-${String(i).padStart(2, '0')}`)));
    for (const d of devices) {
      await f.connect(a, d.id, await d.token(), { will: { topic: `devices/${d.id}/state`, payload: Buffer.from('{"lost":true}'), qos: 1, retain: false } });
    }
    await waitUntil(async () => (await f.redis.client.llen('will')) === WILLS);

    expect(await a.kill('SIGKILL')).toBe('SIGKILL');
    const killedAt = Date.now();
    const back = devices.slice(0, BACK);
    for (const d of back) await f.connect(c, d.id, await d.token());
    const revoked = devices.slice(BACK, BACK + REVOKED);
    await f.registry.devices.update(revoked[0]?.id as string, { blocked: true }, 'admin');
    await f.registry.devices.delete(revoked[1]?.id as string, 'admin');

    const expected = devices.slice(BACK + REVOKED).map((d) => `devices/${d.id}/state`);
    await waitUntil(() => published.size >= expected.length, 20_000);
    const firstAfterMs = Date.now() - killedAt;
    await waitUntil(async () => (await f.redis.client.llen('will')) === 0, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a second scan on either survivor publishes nothing more
    console.info(`wills of a killed node: ${published.size} published (expected ${expected.length}) within ${firstAfterMs} ms of the kill; twice: ${[...published.values()].filter((n) => n > 1).length}`);
    expect([...published.keys()].sort()).toEqual(expected.sort());
    expect([...published.values()].every((n) => n === 1)).toBe(true);
    for (const survivor of [b, c]) expect(survivor.child.exitCode).toBe(null);
    expect(await f.redis.client.smembers('lk:nodes')).toHaveLength(2); // the dead one, cleaned up, left the set
  });
});
