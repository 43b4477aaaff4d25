/**
 * Three `latchkey up` nodes (role both) serve as one service (docs/operations.md §Scaling out):
 * any node's HTTP API sees every device, whichever node holds its session. Real processes on one
 * Redis and one registry.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { waitUntil } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { startProcessCluster, type NodeProcess, type ProcessCluster } from './helpers/node-processes.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');

describe.skipIf(redis.skip)(`three latchkey up nodes${redis.note}`, { timeout: 90_000 }, () => {
  let fx: ProcessCluster;
  beforeAll(async () => {
    redis.assertPresent();
    fx = await startProcessCluster(3, { role: 'both' });
  }, 60_000);
  afterAll(async () => {
    await fx?.close();
  });

  it('a device registered through node A\'s API connects to node B, reads connected on every node, and answers a command sent through node A (and one through C)', async () => {
    const [a, b, c] = fx.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const created = await fx.api(a, 'POST', '/v1/devices', { id: 'thermo-1', publicKey: publicKey.export({ type: 'spki', format: 'pem' }) });
    expect(created.status).toBe(201);
    const connected = async (node: NodeProcess) => (await fx.api(node, 'GET', '/v1/devices/thermo-1')).json.status.connected as boolean;
    for (const node of [a, b, c]) expect(await connected(node)).toBe(false);

    const { token } = await mintConnectToken({ subject: 'thermo-1', privateKey });
    const device = await fx.connect(b, 'thermo-1', token, { clean: false });
    device.on('message', (_topic, payload) => {
      const { id, params } = JSON.parse(payload.toString()) as { id: string; params: unknown };
      void device.publishAsync(`devices/thermo-1/replies/${id}`, JSON.stringify({ ok: true, result: params }), { qos: 1 });
    });
    await device.subscribeAsync('devices/thermo-1/commands/#', { qos: 1 });
    await waitUntil(async () => (await Promise.all([a, b, c].map(connected))).every(Boolean), 10_000);

    const viaA = await fx.api(a, 'POST', '/v1/devices/thermo-1/commands', { name: 'setpoint', params: { c: 21 }, timeoutMs: 10_000 });
    expect(viaA.status, JSON.stringify(viaA.json)).toBe(200);
    expect(viaA.json).toMatchObject({ ok: true, result: { c: 21 } });
    const viaC = await fx.api(c, 'POST', '/v1/devices/thermo-1/commands', { name: 'setpoint', params: { c: 19 }, timeoutMs: 10_000 });
    expect(viaC.json).toMatchObject({ ok: true, result: { c: 19 } });

    await device.endAsync();
    await waitUntil(async () => (await Promise.all([a, b, c].map(connected))).every((v) => !v), 10_000);
    // offline everywhere: a command through any node is refused, not sent into the void
    const offline = await fx.api(a, 'POST', '/v1/devices/thermo-1/commands', { name: 'setpoint', params: {} });
    expect(offline.status).toBe(409);
    expect(offline.json.code).toBe('device_offline');
  });
});
