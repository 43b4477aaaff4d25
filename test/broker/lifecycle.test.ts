/**
 * protocol.md §MQTT CONNECT: a session ends ≤ 1 s after its token's exp + tolerance, and within
 * 1 s of block, delete or removal of the credential it used. The clock is injected: the test
 * moves it past the deadline and measures only the real time from that moment to the close.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { connackFor, connectPacket, rawConnect } from './helpers/raw-mqtt.ts';
import { newKeyPair, startBroker, waitFor, type BrokerFixture, type TestPrincipal } from './helpers/broker-fixture.ts';

let fx: BrokerFixture;
let dev: TestPrincipal;
let watcher: TestPrincipal;
const TOLERANCE_S = 30;

beforeEach(async () => {
  fx = await startBroker({ authFailureLimit: 0, clockTolerance: TOLERANCE_S, statusFlushInterval: 0.1 });
  dev = await fx.device('thermo-1');
  watcher = await fx.service('watcher', { publish: [], subscribe: ['devices/#'] });
});
afterEach(() => fx.close());

/** Resolves with the real milliseconds between `act()` and the client's close. */
async function msUntilClosed(client: MqttClient, act: () => unknown): Promise<number> {
  const closed = new Promise<number>((resolve) => client.once('close', () => resolve(performance.now())));
  const started = performance.now();
  await act();
  return (await closed) - started;
}

function stillOpenAfter(client: MqttClient, ms: number): Promise<boolean> {
  return new Promise((resolve) => setTimeout(() => resolve(client.connected), ms));
}

describe('token expiry', () => {
  it('closes the session within 1 s of exp + tolerance, not before', async () => {
    const { token, exp } = await mintConnectToken({ subject: 'thermo-1', privateKey: dev.privateKey, ttlSeconds: 120, clock: fx.clock });
    const c = await fx.connect('thermo-1', token);
    fx.clock.now = (exp + TOLERANCE_S) * 1000 - 1000; // one second before the deadline
    expect(await stillOpenAfter(c, 600)).toBe(true);
    const ms = await msUntilClosed(c, () => {
      fx.clock.now = (exp + TOLERANCE_S) * 1000;
    });
    expect(ms).toBeLessThanOrEqual(1000);
    expect(await fx.metric('latchkey_broker_connections_closed_total', { reason: 'token_expired' })).toBe(1);
  });

  it('suppresses the will when the broker ends the session', async () => {
    const w = await fx.connect('svc:watcher', await watcher.token());
    const got: string[] = [];
    w.on('message', (topic) => got.push(topic));
    await w.subscribeAsync('devices/+/state', { qos: 1 });
    const { token, exp } = await mintConnectToken({ subject: 'thermo-1', privateKey: dev.privateKey, ttlSeconds: 60, clock: fx.clock });
    const c = await fx.connect('thermo-1', token, { will: { topic: 'devices/thermo-1/state', payload: Buffer.from('{"online":false}'), qos: 1, retain: false } });
    await msUntilClosed(c, () => {
      fx.clock.now = (exp + TOLERANCE_S) * 1000 + 1;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([]);
  });

  it('publishes the will when the network connection is lost (MQTT 3.1.1 §3.1.2.5)', async () => {
    const w = await fx.connect('svc:watcher', await watcher.token());
    const got: string[] = [];
    w.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    await w.subscribeAsync('devices/+/state', { qos: 1 });
    const raw = await rawConnect(fx.port);
    raw.send(connectPacket({ clientId: 'thermo-1', username: 'u', password: await dev.token(), will: { topic: 'devices/thermo-1/state', payload: '{"online":false}' } }));
    expect(await raw.connack()).toBe(0);
    raw.socket.destroy();
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['devices/thermo-1/state {"online":false}']);
  });
});

describe('registry changes end live sessions within 1 s', () => {
  it('block (and unblock lets the device back in)', async () => {
    const c = await fx.connect('thermo-1', await dev.token());
    const ms = await msUntilClosed(c, () => fx.registry.devices.update('thermo-1', { blocked: true }, 'test'));
    expect(ms).toBeLessThanOrEqual(1000);
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token() })).toBe(5);
    await fx.registry.devices.update('thermo-1', { blocked: false }, 'test');
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token() })).toBe(0);
  });

  it('delete', async () => {
    const c = await fx.connect('thermo-1', await dev.token());
    const other = await fx.device('thermo-2');
    const c2 = await fx.connect('thermo-2', await other.token());
    const ms = await msUntilClosed(c, () => fx.registry.devices.delete('thermo-1', 'test'));
    expect(ms).toBeLessThanOrEqual(1000);
    expect(await stillOpenAfter(c2, 100)).toBe(true);
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token() })).toBe(4);
  });

  it('delete forgets the persistent session: a device registered again under that id starts clean', async () => {
    // the device keeps a persistent session subscribed to its commands, then goes offline
    const c = await fx.connect('thermo-1', await dev.token(), { clean: false });
    await c.subscribeAsync('devices/thermo-1/commands/#', { qos: 1 });
    await c.endAsync();
    // a command is queued for the offline session; its queue and subscription exist
    await fx.broker.messaging.publish('devices/thermo-1/commands/unlock', Buffer.from('{"id":"old"}'), { qos: 1, retain: false });
    const resumed = await fx.connect('thermo-1', await dev.token(), { clean: false });
    const first = await new Promise<string>((resolve) => resumed.once('message', (_t, payload) => resolve(payload.toString())));
    expect(first).toBe('{"id":"old"}'); // the queue was really there (so the test can fail)
    await fx.broker.messaging.publish('devices/thermo-1/commands/unlock', Buffer.from('{"id":"stale"}'), { qos: 1, retain: false });
    await resumed.endAsync();
    await fx.broker.messaging.publish('devices/thermo-1/commands/unlock', Buffer.from('{"id":"queued"}'), { qos: 1, retain: false });

    await fx.registry.devices.delete('thermo-1', 'test');
    await new Promise((r) => setTimeout(r, 100));
    const again = await fx.device('thermo-1'); // a new key under the old id
    const got: string[] = [];
    const fresh = await fx.connect('thermo-1', await again.token(), { clean: false });
    fresh.on('message', (_t, payload) => got.push(payload.toString()));
    expect(fresh.connected).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
    // no subscription survived either: a new command reaches nobody until the device subscribes
    await fx.broker.messaging.publish('devices/thermo-1/commands/unlock', Buffer.from('{"id":"new"}'), { qos: 1, retain: false });
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([]);
  });

  it('credential removal closes only the session that used that credential', async () => {
    const second = newKeyPair();
    const kid2 = (await fx.registry.devices.addCredential('thermo-1', parsePublicKey(second.pem), null, 'test')).kid;
    const other = await fx.device('thermo-2');
    const c = await fx.connect('thermo-1', await dev.token({ kid: dev.kid }));
    const c2 = await fx.connect('thermo-2', await other.token());
    await fx.registry.devices.removeCredential('thermo-1', kid2, 'test'); // not the one in use
    expect(await stillOpenAfter(c, 300)).toBe(true);
    const ms = await msUntilClosed(c, () => fx.registry.devices.removeCredential('thermo-1', dev.kid, 'test'));
    expect(ms).toBeLessThanOrEqual(1000);
    expect(c2.connected).toBe(true);
    // the removed key no longer verifies (the key cache was invalidated)
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token() })).toBe(4);
    const back = (await mintConnectToken({ subject: 'thermo-1', privateKey: second.privateKey, clock: fx.clock })).token;
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: back })).toBe(4); // kid2 was removed too
  });
});

describe("another device's client id", () => {
  it("a failed login with a live device's client id leaves that session untouched", async () => {
    const c = await fx.connect('thermo-1', await dev.token(), { clean: false });
    const got: string[] = [];
    c.on('message', (topic) => got.push(topic));
    await c.subscribeAsync('devices/thermo-1/commands/#', { qos: 1 });
    let closes = 0;
    c.on('close', () => closes++);
    const intruder = await fx.device('thermo-9');
    for (const password of ['garbage', await intruder.token(), (await mintConnectToken({ subject: 'thermo-1', privateKey: newKeyPair().privateKey, clock: fx.clock })).token]) {
      expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password })).toBe(4);
    }
    expect(await stillOpenAfter(c, 200)).toBe(true);
    expect(closes).toBe(0);
    expect(await fx.broker.messaging.isOnline('thermo-1')).toBe(true);
    await fx.broker.messaging.publish('devices/thermo-1/commands/ping', Buffer.from('{"id":"1","params":{}}'), { qos: 1, retain: false });
    await waitFor(() => got.length === 1);
    await waitFor(async () => (await fx.registry.devices.get('thermo-1')).status.connected);
  });
});

describe('device status', () => {
  it('records connect, batched last seen, and disconnect', async () => {
    const c = await fx.connect('thermo-1', await dev.token());
    await waitFor(async () => (await fx.registry.devices.get('thermo-1')).status.connected);
    const connectedAt = fx.clock();
    expect((await fx.registry.devices.get('thermo-1')).status.lastConnectedAt).toBe(connectedAt);
    fx.clock.advance(5000);
    await c.publishAsync('devices/thermo-1/telemetry', '1', { qos: 1 });
    await waitFor(async () => (await fx.registry.devices.get('thermo-1')).status.lastSeenAt === connectedAt + 5000);
    fx.clock.advance(1000);
    await c.endAsync();
    await waitFor(async () => !(await fx.registry.devices.get('thermo-1')).status.connected);
    expect((await fx.registry.devices.get('thermo-1')).status.lastDisconnectedAt).toBe(connectedAt + 6000);
  });
});

describe('shutdown', () => {
  it('close() ends sessions and listeners within 5 s; the broker is no longer ready', async () => {
    const c = await fx.connect('thermo-1', await dev.token());
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const started = performance.now();
    await fx.broker.close();
    await closed;
    expect(performance.now() - started).toBeLessThan(5000);
    expect(fx.broker.ready).toBe(false);
    await expect(fx.broker.messaging.publish('devices/thermo-1/config', Buffer.from('{}'), { qos: 0, retain: false })).rejects.toThrow();
  });
});
