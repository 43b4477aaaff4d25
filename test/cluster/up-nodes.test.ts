/**
 * Three `latchkey up` nodes (role both) on one Redis and one PostgreSQL registry serve as one
 * service (docs/operations.md §Scaling out): any node's HTTP API sees every device, whichever node
 * holds its session; a revocation through one node ends the session on whichever node holds it,
 * by the change feed's notification (its latency against the 1 s promise is a benchmark figure:
 * `npm run bench -- revocation`); the nodes survive a restart of Redis and of PostgreSQL, and revocation still
 * works afterwards. Real processes; the PostgreSQL server is the test's own (it is restarted).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { connackFor } from '../broker/helpers/raw-mqtt.ts';
import { newKeyPair } from '../broker/helpers/broker-fixture.ts';
import { pgBinDir, startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts';
import { requireTools } from '../helpers/tools.ts';
import { DEFAULT_FEED_TIMINGS } from '../../provisioning/src/registry/postgres-feed.ts';
import { startProcessCluster, type NodeProcess, type ProcessCluster } from './helpers/node-processes.ts';
import { revokeInTurn, watchClose, type WatchedSession } from './helpers/revocation-latency.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');
const noPg = pgBinDir() === null;
if (noPg && process.env.CI !== 'true') console.warn('skipped, PostgreSQL is not installed (PostgreSQL 15: initdb, pg_ctl)');
const skip = redis.skip || (noPg && process.env.CI !== 'true');
const note = `${redis.note}${noPg ? ' [needs PostgreSQL 15: initdb, pg_ctl]' : ''}`;

const DEVICES = 50;
/** the change feed's safety poll (a notification is the wake-up; the poll catches what one missed) */
const POLL_MS = DEFAULT_FEED_TIMINGS.pollMs;
const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }) as string;

describe.skipIf(skip)(`three latchkey up nodes on Redis and PostgreSQL${note}`, { timeout: 120_000 }, () => {
  let pgServer: PgCluster;
  let fx: ProcessCluster;
  beforeAll(async () => {
    redis.assertPresent();
    expect(noPg, 'CI=true and PostgreSQL is not installed').toBe(false);
    pgServer = await startPgCluster();
    fx = await startProcessCluster(3, { role: 'both', databaseUrl: pgServer.url, redis: { appendonly: true } });
  }, 120_000);
  afterAll(async () => {
    await fx?.close();
    await pgServer?.destroy();
  });
  const api = (node: NodeProcess, method: string, urlPath: string, body?: unknown) => fx.api(node, method, urlPath, body);

  it('a device registered through node A\'s API connects to node B, reads connected on every node (also after a fourth node starts), and answers a command sent through node A (and one through C)', async () => {
    const [a, b, c] = fx.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const created = await api(a, 'POST', '/v1/devices', { id: 'thermo-1', publicKey: pem(publicKey) });
    expect(created.status).toBe(201);
    const connected = async (node: NodeProcess) => (await api(node, 'GET', '/v1/devices/thermo-1')).json.status.connected as boolean;
    for (const node of [a, b, c]) expect(await connected(node)).toBe(false);

    const { token } = await mintConnectToken({ subject: 'thermo-1', privateKey });
    const device = await fx.connect(b, 'thermo-1', token, { clean: false });
    device.on('message', (_topic, payload) => {
      const { id, params } = JSON.parse(payload.toString()) as { id: string; params: unknown };
      void device.publishAsync(`devices/thermo-1/replies/${id}`, JSON.stringify({ ok: true, result: params }), { qos: 1 });
    });
    await device.subscribeAsync('devices/thermo-1/commands/#', { qos: 1 });
    await vi.waitFor(async () => expect(await Promise.all([a, b, c].map(connected))).toEqual([true, true, true]), { timeout: 10_000 });

    // the registry's session count (the console's connected count) survives another node's start
    await vi.waitFor(async () => expect(await fx.registry.stats.countConnected()).toBe(1), { timeout: 10_000 });
    await fx.start();
    expect(await fx.registry.stats.countConnected()).toBe(1);

    const viaA = await api(a, 'POST', '/v1/devices/thermo-1/commands', { name: 'setpoint', params: { c: 21 }, timeoutMs: 10_000 });
    expect(viaA.status, JSON.stringify(viaA.json)).toBe(200);
    expect(viaA.json).toMatchObject({ ok: true, result: { c: 21 } });
    const viaC = await api(c, 'POST', '/v1/devices/thermo-1/commands', { name: 'setpoint', params: { c: 19 }, timeoutMs: 10_000 });
    expect(viaC.json).toMatchObject({ ok: true, result: { c: 19 } });

    await device.endAsync();
    await vi.waitFor(async () => expect(await Promise.all([a, b, c].map(connected))).toEqual([false, false, false]), { timeout: 10_000 });
    const offline = await api(a, 'POST', '/v1/devices/thermo-1/commands', { name: 'setpoint', params: {} });
    expect(offline.status).toBe(409);
    expect(offline.json.code).toBe('device_offline');
  });

  /** Connects each device to B or C in turn; each entry resolves when its session closed (performance clock). */
  async function connectOnBandC(devices: { id: string; privateKey: KeyObject; kid?: string }[]) {
    const [, b, c] = fx.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const sessions = await Promise.all(
      devices.map(async (d, i) => {
        const { token } = await mintConnectToken({ subject: d.id, privateKey: d.privateKey, ...(d.kid === undefined ? {} : { kid: d.kid }) });
        return { id: d.id, ...watchClose(await fx.connect(i % 2 === 0 ? b : c, d.id, token, { clean: false })) };
      }),
    );
    return sessions;
  }

  /** Revokes each device in turn through node A (`request`); the latency of each from its request to its session's close. */
  async function revokeThroughA(sessions: (WatchedSession & { id: string })[], request: (id: string) => Promise<{ status: number }>) {
    return revokeInTurn(sessions, async (i) => expect((await request((sessions[i] as { id: string }).id)).status).toBeLessThan(300));
  }

  it(`block, key removal and delete through node A close the sessions of ${DEVICES} devices on B and C by notification (median under 1 s)`, async () => {
    const a = fx.nodes[0] as NodeProcess;
    const devices = Array.from({ length: DEVICES }, (_, i) => ({ id: `rev-${String(i).padStart(2, '0')}`, ...newKeyPair() }));
    const batch = await api(a, 'POST', '/v1/devices:batch', { devices: devices.map((d) => ({ id: d.id, publicKey: d.pem })) });
    expect(batch.status, JSON.stringify(batch.json)).toBe(201);
    const presence = async () => (await fx.redis.client.keys('lk:presence:rev-*')).length;

    let live = await connectOnBandC(devices);
    await vi.waitFor(async () => expect(await presence()).toBe(DEVICES), { timeout: 10_000 });
    const block = await revokeThroughA(live, (id) => api(a, 'PATCH', `/v1/devices/${id}`, { blocked: true }));
    for (const d of devices) expect((await api(a, 'PATCH', `/v1/devices/${d.id}`, { blocked: false })).status).toBe(200);

    // key removal: a second key each; the sessions made with the first end when it is removed
    const second = new Map<string, { privateKey: KeyObject; kid: string }>();
    for (const d of devices) {
      const k = newKeyPair();
      const added = await api(a, 'POST', `/v1/devices/${d.id}/credentials`, { publicKey: k.pem });
      expect(added.status).toBe(201);
      second.set(d.id, { privateKey: k.privateKey, kid: added.json.kid });
    }
    const firstKids = new Map<string, string>();
    for (const d of devices) firstKids.set(d.id, (await api(a, 'GET', `/v1/devices/${d.id}`)).json.credentials.find((c: { kid: string }) => c.kid !== second.get(d.id)?.kid).kid);
    live = await connectOnBandC(devices.map((d) => ({ id: d.id, privateKey: d.privateKey, kid: firstKids.get(d.id) })));
    // the keys verified these live sessions' connects: removing one in use needs force (issue 15, docs/api.md)
    const removal = await revokeThroughA(live, (id) => api(a, 'DELETE', `/v1/devices/${id}/credentials/${firstKids.get(id)}?force=true`));

    live = await connectOnBandC(devices.map((d) => ({ id: d.id, ...(second.get(d.id) as { privateKey: KeyObject; kid: string }) })));
    const deletion = await revokeThroughA(live, (id) => api(a, 'DELETE', `/v1/devices/${id}`));
    await vi.waitFor(async () => expect(await presence()).toBe(0), { timeout: 10_000 });

    console.info(
      `revocation through node A, ${DEVICES} devices on B and C (latchkey up, Redis, PostgreSQL): ` +
        `block p50 ${block.p50} ms p100 ${block.p100} ms; key removal p50 ${removal.p50} ms p100 ${removal.p100} ms; delete p50 ${deletion.p50} ms p100 ${deletion.p100} ms`,
    );
    // The promise is 1 s (docs/protocol.md); its tail is a latency figure, measured on a quiet
    // machine by `npm run bench -- revocation` (docs/benchmarks.md). Here, with three node processes,
    // PostgreSQL and Redis on two saturated cores, one scheduling stall can pass 1 s (CI: p100
    // 1,035 ms, p50 tens of ms), so the suite asserts the mechanism instead: the notification closes
    // them. Without it only the 5 s safety poll would, at latencies spread over 0–5 s: a median
    // under 1 s and no close at 4 s or later cannot happen that way (50 revocations each).
    for (const r of [block, removal, deletion]) {
      expect(r.p50).toBeLessThan(1000);
      expect(r.p100).toBeLessThan(POLL_MS - 1000);
    }
  });

  it('a restart of Redis, then of PostgreSQL, mid-run: the nodes survive, serve again, and a block through A still ends a session on B by notification', async () => {
    const [a, b, c] = fx.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const devices = Array.from({ length: 4 }, (_, i) => ({ id: `rs-${i}`, ...newKeyPair() }));
    for (const d of devices) expect((await api(a, 'POST', '/v1/devices', { id: d.id, publicKey: d.pem })).status).toBe(201);
    const token = async (d: { id: string; privateKey: KeyObject }) => (await mintConnectToken({ subject: d.id, privateKey: d.privateKey })).token;
    const probe = devices[3] as (typeof devices)[number];
    const connackOn = async (node: NodeProcess) => connackFor(node.port, { clientId: probe.id, username: 'x', password: await token(probe) }).catch(() => 'none');
    const serving = async () => {
      for (const node of [a, b, c]) expect(await connackOn(node)).toBe(0);
    };
    const blockClosesOnB = async (d: (typeof devices)[number]) => {
      const session = watchClose(await fx.connect(b, d.id, await token(d), { clean: false }));
      const latency = await revokeInTurn([session], async () => expect((await api(a, 'PATCH', `/v1/devices/${d.id}`, { blocked: true })).status).toBe(200));
      return latency.p100;
    };
    const results: string[] = [];

    // Redis (AOF) restarts
    await fx.redis.stop({ save: true });
    await vi.waitFor(async () => expect(await connackOn(b)).toBe(3), { timeout: 15_000, interval: 200 });
    await fx.redis.start();
    await vi.waitFor(serving, { timeout: 30_000, interval: 250 });
    for (const node of fx.nodes) expect(node.child.exitCode).toBe(null);
    const afterRedis = await blockClosesOnB(devices[0] as (typeof devices)[number]);
    results.push(`after the Redis restart: block through A closed the session on B in ${afterRedis} ms`);

    // PostgreSQL restarts: the nodes' change feeds go down (new connects get 3 after 1 s), then resync
    await pgServer.stop();
    await vi.waitFor(async () => expect(await connackOn(c)).toBe(3), { timeout: 15_000, interval: 200 });
    for (const node of fx.nodes) expect(node.child.exitCode).toBe(null);
    await pgServer.start();
    await vi.waitFor(serving, { timeout: 30_000, interval: 250 });
    const afterPg = await blockClosesOnB(devices[1] as (typeof devices)[number]);
    results.push(`after the PostgreSQL restart: ${afterPg} ms`);

    console.info(`restarts under three latchkey up nodes: ${results.join('; ')}`);
    for (const node of fx.nodes) expect(node.child.exitCode).toBe(null);
    // one sample each: below the safety poll, i.e. the notification again (see the test above)
    expect(afterRedis).toBeLessThan(POLL_MS - 1000);
    expect(afterPg).toBeLessThan(POLL_MS - 1000);
  });
});
