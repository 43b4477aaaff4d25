/** protocol.md §Topics, §Service accounts: allow/deny for devices and a service account, over mqtt.js. */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceMessagingPort } from '../../provisioning/src/http/messaging-port.ts';
import { startBroker, waitFor, type BrokerFixture, type TestPrincipal } from './helpers/broker-fixture.ts';

let fx: BrokerFixture;
let dev: TestPrincipal;
let other: TestPrincipal;
let svc: TestPrincipal;

beforeAll(async () => {
  fx = await startBroker({ authFailureLimit: 0 });
  dev = await fx.device('thermo-1');
  other = await fx.device('thermo-2');
  svc = await fx.service('dashboard', { publish: ['devices/+/commands/#'], subscribe: ['devices/+/telemetry/#', 'devices/+/state'] });
});
afterAll(() => fx.close());

/** SUBACK granted codes for one filter per call (architecture.md §Library facts: one filter per SUBSCRIBE). */
async function granted(client: MqttClient, filter: string): Promise<number> {
  return (await grantedAll(client, { [filter]: { qos: 1 } }))[0] as number;
}

/** SUBACK return codes; mqtt.js rejects a SUBACK holding 0x80, so read them from its packet. */
async function grantedAll(client: MqttClient, filters: Record<string, { qos: 0 | 1 }>): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters)).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (packet?.granted === undefined) throw err;
    return packet.granted;
  }
}

function closedSoon(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) resolve();
    client.once('close', () => resolve());
  });
}

function messages(client: MqttClient): Array<{ topic: string; payload: string; retain: boolean }> {
  const got: Array<{ topic: string; payload: string; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return got;
}

describe('devices', () => {
  it('may subscribe only to their commands and config', async () => {
    const c = await fx.connect('thermo-1', await dev.token());
    expect(await granted(c, 'devices/thermo-1/commands/#')).toBe(1);
    expect(await granted(c, 'devices/thermo-1/commands/reboot')).toBe(1);
    expect(await granted(c, 'devices/thermo-1/config')).toBe(1);
    for (const refused of ['#', '+/thermo-1/commands/#', 'devices/thermo-2/commands/#', 'devices/+/commands/#', 'devices/thermo-1/telemetry', '$SYS/#', 'devices/thermo-1/#']) {
      expect(await granted(c, refused), refused).toBe(128);
    }
    expect(c.connected).toBe(true); // a refused filter is 0x80, not a disconnect
    await c.endAsync();
  });

  it('may publish to their own device → cloud topics; the retain flag is ignored', async () => {
    const watcher = await fx.connect('svc:dashboard', await svc.token());
    const got = messages(watcher);
    await watcher.subscribeAsync('devices/+/telemetry/#', { qos: 1 });
    const c = await fx.connect('thermo-1', await dev.token());
    await c.publishAsync('devices/thermo-1/telemetry', '21.5', { qos: 1, retain: true });
    await c.publishAsync('devices/thermo-1/telemetry/humidity', '40', { qos: 0 });
    await c.publishAsync('devices/thermo-1/replies/cmd-1', '{"ok":true}', { qos: 1 });
    await waitFor(() => got.length === 2);
    expect(got.map((m) => m.topic).sort()).toEqual(['devices/thermo-1/telemetry', 'devices/thermo-1/telemetry/humidity']);
    expect(got.every((m) => !m.retain)).toBe(true);
    // nothing was retained: a new subscriber gets no retained telemetry
    const late = await fx.connect('svc:dashboard:late', await svc.token());
    const lateGot = messages(late);
    await late.subscribeAsync('devices/+/telemetry', { qos: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(lateGot).toEqual([]);
    expect(c.connected).toBe(true);
    await Promise.all([c.endAsync(), watcher.endAsync(), late.endAsync()]);
  });

  for (const topic of ['devices/thermo-2/telemetry', 'devices/thermo-1/commands/x', 'devices/thermo-1/config', '$SYS/broker/x', 'other/topic']) {
    it(`a publish to ${topic} closes the connection and is not delivered`, async () => {
      const spy = await fx.connect('svc:dashboard:spy', await svc.token(), { clientId: 'svc:dashboard:spy' });
      const got = messages(spy);
      await spy.subscribeAsync('devices/+/telemetry', { qos: 0 });
      const c = await fx.connect('thermo-1', await dev.token());
      const closed = closedSoon(c);
      c.publish(topic, 'x', { qos: 0 });
      await closed;
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([]);
      await spy.endAsync();
    });
  }

  it('stores a JSON state publish in the registry; a non-JSON one is not stored', async () => {
    const c = await fx.connect('thermo-1', await dev.token());
    await c.publishAsync('devices/thermo-1/state', '{"setpoint":21}', { qos: 1 });
    await waitFor(async () => (await fx.registry.configState.getState('thermo-1')) !== null);
    expect((await fx.registry.configState.getState('thermo-1'))?.state).toEqual({ setpoint: 21 });
    await c.publishAsync('devices/thermo-1/state', 'not json', { qos: 1 });
    await c.publishAsync('devices/thermo-1/state', '{"setpoint":22}', { qos: 1 });
    await waitFor(async () => JSON.stringify((await fx.registry.configState.getState('thermo-1'))?.state) === '{"setpoint":22}');
    expect(fx.log.entries.some((e) => e.msg.includes('not stored'))).toBe(true);
    await c.endAsync();
  });
});

describe('a service account', () => {
  it('subscribes inside its ACL only, and publishes inside its ACL only', async () => {
    const s = await fx.connect('svc:dashboard', await svc.token());
    expect(await granted(s, 'devices/+/telemetry/#')).toBe(1);
    expect(await granted(s, 'devices/thermo-1/telemetry')).toBe(1);
    expect(await granted(s, 'devices/+/state')).toBe(1);
    for (const refused of ['#', 'devices/#', 'devices/+/commands/#', '$SYS/#', 'devices/+/replies/#']) {
      expect(await granted(s, refused), refused).toBe(128);
    }
    const d = await fx.connect('thermo-2', await other.token());
    const got = messages(d);
    await d.subscribeAsync('devices/thermo-2/commands/#', { qos: 1 });
    await s.publishAsync('devices/thermo-2/commands/reboot', '{"id":"c1","params":{}}', { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]?.topic).toBe('devices/thermo-2/commands/reboot');
    const closed = closedSoon(s);
    s.publish('devices/thermo-2/config', '{}', { qos: 0 });
    await closed;
    await d.endAsync();
  });
});

describe('clean:false sessions (architecture.md §Library facts: aedes persists refused filters)', () => {
  it('a refused filter persisted by a mixed SUBSCRIBE never delivers, also after reconnect', async () => {
    const opts = { clean: false, clientId: 'thermo-1' };
    const c = await fx.connect('thermo-1', await dev.token(), opts);
    expect(await grantedAll(c, { 'devices/thermo-1/commands/#': { qos: 1 }, 'devices/thermo-2/telemetry': { qos: 1 } })).toEqual([1, 128]);
    await c.endAsync();
    // while offline: a message on the refused filter and one on the allowed one
    const d2 = await fx.connect('thermo-2', await other.token());
    await d2.publishAsync('devices/thermo-2/telemetry', 'leak?', { qos: 1 });
    await fx.broker.messaging.publish('devices/thermo-1/commands/ping', Buffer.from('{"id":"c2","params":{}}'), { qos: 1, retain: false });
    const back = await fx.connect('thermo-1', await dev.token(), { ...opts, resubscribe: false });
    const got = messages(back);
    await waitFor(() => got.length >= 1);
    await d2.publishAsync('devices/thermo-2/telemetry', 'leak again?', { qos: 1 });
    await new Promise((r) => setTimeout(r, 150));
    expect(got.map((m) => m.topic)).toEqual(['devices/thermo-1/commands/ping']);
    await Promise.all([back.endAsync(), d2.endAsync()]);
  });
});

describe('the in-process messaging port', () => {
  it('implements DeviceMessagingPort: isOnline, publish as the backend, subscribe to client publishes', async () => {
    const port: DeviceMessagingPort = fx.broker.messaging;
    expect(await port.isOnline('thermo-2')).toBe(false);
    const d = await fx.connect('thermo-2', await other.token());
    expect(await port.isOnline('thermo-2')).toBe(true);
    expect(await port.isOnline('svc:dashboard')).toBe(false);
    expect([...(await port.onlineAmong(['thermo-2', 'thermo-1', 'svc:dashboard']))]).toEqual(['thermo-2']);
    const seen: string[] = [];
    const stop = port.subscribe('devices/+/replies/#', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    const got = messages(d);
    await d.subscribeAsync('devices/thermo-2/config', { qos: 1 });
    await port.publish('devices/thermo-2/config', Buffer.from('{"version":1,"config":{}}'), { qos: 1, retain: true });
    await waitFor(() => got.length === 1);
    await d.publishAsync('devices/thermo-2/replies/c1', '{"ok":true}', { qos: 1 });
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual(['devices/thermo-2/replies/c1 {"ok":true}']);
    stop();
    await d.publishAsync('devices/thermo-2/replies/c2', '{"ok":true}', { qos: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(1);
    expect(() => port.publish('devices/+/config', Buffer.from('x'), { qos: 1, retain: false })).toThrow(TypeError);
    expect(() => port.subscribe('a/#/b', () => undefined)).toThrow(TypeError);
    await d.endAsync();
    await waitFor(async () => !(await port.isOnline('thermo-2')));
  });
});
