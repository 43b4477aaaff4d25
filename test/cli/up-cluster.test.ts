/**
 * `latchkey up` as a node of a cluster (docs/configuration.md `--redis-url`, `--node-id`, `--role`;
 * docs/operations.md §Scaling out), real processes on a Redis of the test's own: an API-only node
 * and a broker-only node serve one device together, and a node survives its Redis going away.
 */
import { generateKeyPairSync } from 'node:crypto';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { connackFor } from '../broker/helpers/raw-mqtt.ts';
import { startRedis, waitUntil, type RedisServer } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';
import { errorLine, runLatchkey, startUp, tempDir, type RunningStack } from './cli-process.ts';

const redis = requireTools(['redis-server'], 'apt-get install redis-server');
const ADMIN = 'a'.repeat(40);
const PASSWORD = 'redis-secret-3f9c';

async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text) };
}

describe('latchkey up --redis-url: settings', { timeout: 60_000 }, () => {
  it('refuses --role api or broker without --redis-url, and a node id with a colon, in one line each', async () => {
    const role = await runLatchkey(['up', '--role', 'api']);
    expect(role.code).toBe(2);
    expect(errorLine(role.stderr)?.detail).toMatch(/--role \(LATCHKEY_ROLE\) api requires --redis-url \(LATCHKEY_REDIS_URL\)/);
    const node = await runLatchkey(['up', '--node-id', 'a:b', '--redis-url', 'redis://127.0.0.1:1']);
    expect(node.code).toBe(2);
    expect(errorLine(node.stderr)?.detail).toMatch(/--node-id \(LATCHKEY_NODE_ID\) must be 1 to 32 letters, digits, _ or -/);
    const url = await runLatchkey(['up', '--redis-url', `http://:${PASSWORD}@example`]);
    expect(url.code).toBe(2);
    expect(url.stderr).toMatch(/--redis-url \(LATCHKEY_REDIS_URL\) must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(url.stderr).not.toContain(PASSWORD);
  });
});

describe.skipIf(redis.skip)(`latchkey up --redis-url: an API node and a broker node${redis.note}`, { timeout: 90_000 }, () => {
  const tmp = tempDir('up-cluster');
  let server: RedisServer;
  let apiNode: RunningStack;
  let brokerNode: RunningStack;
  beforeAll(async () => {
    redis.assertPresent();
    server = await startRedis({ password: PASSWORD });
    const common = ['--data-dir', 'shared', '--log-level', 'info', '--auth-failure-limit', '3'];
    const env = { LATCHKEY_ADMIN_TOKEN: ADMIN, LATCHKEY_REDIS_URL: server.url, LATCHKEY_HEARTBEAT_INTERVAL: '0.5' };
    brokerNode = await startUp([...common, '--role', 'broker', '--node-id', 'b1'], { cwd: tmp.dir, env });
    apiNode = await startUp([...common, '--role', 'api', '--node-id', 'a1'], { cwd: tmp.dir, env });
  }, 60_000);
  afterAll(async () => {
    await apiNode?.stop();
    await brokerNode?.stop();
    await server?.close();
    tmp.cleanup();
  });

  it('the API node serves no MQTT and the broker node no API; a device registered through the API node connects to the broker node, reads connected there and gets a command sent through the API node', async () => {
    expect(apiNode.lines.has('mqtt')).toBe(false);
    expect(brokerNode.mqttUrl).toMatch(/^mqtt:\/\//);
    expect((await api(brokerNode.httpUrl, 'GET', '/healthz')).status).toBe(200);
    expect((await api(brokerNode.httpUrl, 'GET', '/readyz')).status).toBe(200);
    expect((await api(brokerNode.httpUrl, 'GET', '/v1/devices')).status).toBe(404);

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const created = await api(apiNode.httpUrl, 'POST', '/v1/devices', { id: 'thermo-1', publicKey: publicKey.export({ type: 'spki', format: 'pem' }) });
    expect(created.status).toBe(201);
    const { token } = await mintConnectToken({ subject: 'thermo-1', privateKey });
    const device = await mqtt.connectAsync(brokerNode.mqttUrl, { clientId: 'thermo-1', username: 'x', password: token, clean: false, reconnectPeriod: 0 });
    try {
      device.on('message', (_topic, payload) => {
        const { id, params } = JSON.parse(payload.toString()) as { id: string; params: unknown };
        void device.publishAsync(`devices/thermo-1/replies/${id}`, JSON.stringify({ ok: true, result: params }), { qos: 1 });
      });
      await device.subscribeAsync('devices/thermo-1/commands/#', { qos: 1 });
      await waitUntil(async () => (await api(apiNode.httpUrl, 'GET', '/v1/devices/thermo-1')).json.status.connected === true);
      const sent = await api(apiNode.httpUrl, 'POST', '/v1/devices/thermo-1/commands', { name: 'setpoint', params: { c: 21 }, timeoutMs: 5000 });
      expect(sent.status).toBe(200);
      expect(sent.json).toMatchObject({ ok: true, result: { c: 21 } });
    } finally {
      await device.endAsync();
    }
    await waitUntil(async () => (await api(apiNode.httpUrl, 'GET', '/v1/devices/thermo-1')).json.status.connected === false);
  });

  it('a node whose Redis goes away stays up, refuses new connects with CONNACK 3, serves again when Redis is back, and never logs the Redis password', async () => {
    const port = Number(new URL(brokerNode.mqttUrl).port);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect((await api(apiNode.httpUrl, 'POST', '/v1/devices', { id: 'thermo-2', publicKey: publicKey.export({ type: 'spki', format: 'pem' }) })).status).toBe(201);
    const password = async () => (await mintConnectToken({ subject: 'thermo-2', privateKey })).token;
    expect(await connackFor(port, { clientId: 'thermo-2', username: 'x', password: await password() })).toBe(0);
    await server.stop();
    // refused with 3 once Redis has been away for more than 1 s; these refusals are the server's, so
    // more of them than --auth-failure-limit never throttle the address (5 would be fatal to the SDK)
    // (a CONNECT in the first second of the outage waits for Redis: no CONNACK before the helper's timeout)
    const codes: (number | string)[] = [];
    const attempt = async () => {
      codes.push(await connackFor(port, { clientId: 'thermo-2', username: 'x', password: await password() }).catch(() => 'none'));
      return codes.at(-1);
    };
    await waitUntil(async () => (await attempt()) === 3, 10_000);
    for (let i = 0; i < 4; i++) expect(await attempt()).toBe(3);
    expect(brokerNode.child.exitCode).toBe(null);
    expect(apiNode.child.exitCode).toBe(null);
    await server.start();
    await waitUntil(async () => (await attempt()) === 0, 20_000);
    expect(codes).not.toContain(5);
    for (const node of [brokerNode, apiNode]) {
      expect(node.stderr()).toMatch(/lost the connection to Redis/);
      expect(node.stderr()).not.toContain(PASSWORD);
    }
  });
});
