import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signDeviceMessage } from '@latchkey/device-sdk';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { checkBrokerConfig } from '../../broker/src/index.ts';
import { newKeyPair, startBroker, waitFor, type BrokerFixture, type TestPrincipal } from './helpers/broker-fixture.ts';

/**
 * protocol.md §Signed messages at the broker: with `requireSignedTopics`, a publish on a covered
 * device → cloud topic must be a message signed by the device the topic names; anything else closes
 * the publisher's connection (protocol.md §Topics: a refused publish closes the connection) and is
 * never delivered, counted in latchkey_broker_signed_publishes_total by reason.
 */

let fx: BrokerFixture;
let a: TestPrincipal;
let b: TestPrincipal;
let bridge: TestPrincipal;
let watcher: MqttClient;
let got: { topic: string; payload: string }[];

beforeEach(async () => {
  fx = await startBroker({ requireSignedTopics: ['devices/+/telemetry/#'], authFailureLimit: 0 });
  a = await fx.device('thermo-a');
  b = await fx.device('thermo-b');
  bridge = await fx.service('bridge', { publish: ['devices/+/telemetry/#', 'devices/+/commands/#', 'devices/+/state'], subscribe: [] });
  const w = await fx.service('watcher', { publish: [], subscribe: ['devices/#'] });
  watcher = await fx.connect('svc:watcher', await w.token());
  got = [];
  watcher.on('message', (topic, payload) => got.push({ topic, payload: payload.toString('latin1') }));
  await watcher.subscribeAsync('devices/#', { qos: 1 });
});
afterEach(() => fx.close());

const sign = (device: TestPrincipal, topic: string, payload: unknown, o: { seq?: number; kid?: string; at?: number } = {}) =>
  signDeviceMessage({ deviceId: device.id, topic, payload, seq: o.seq ?? 1, privateKey: device.privateKey, clock: () => o.at ?? fx.clock(), ...(o.kid === undefined ? {} : { kid: o.kid }) });

function closedSoon(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) resolve();
    client.once('close', () => resolve());
  });
}

/** Publishes what must be refused: the connection closes, nothing is delivered, the reason is counted. */
async function refused(client: MqttClient, topic: string, payload: string, reason: string): Promise<void> {
  const before = await fx.metric('latchkey_broker_signed_publishes_total', { result: 'refused', reason });
  const delivered = got.length;
  const closed = closedSoon(client);
  client.publish(topic, payload, { qos: 1 });
  await closed;
  await new Promise((r) => setTimeout(r, 50));
  expect(got.slice(delivered)).toEqual([]);
  expect(await fx.metric('latchkey_broker_signed_publishes_total', { result: 'refused', reason })).toBe(before + 1);
  expect(await fx.metric('latchkey_broker_connections_closed_total', { reason: 'signature_refused' })).toBeGreaterThan(0);
}

describe('requireSignedTopics at the edge', () => {
  it('delivers a device’s signed telemetry, with one verification counted per message', async () => {
    const c = await fx.connect('thermo-a', await a.token());
    const messages = await Promise.all([1, 2, 3].map((seq) => sign(a, 'devices/thermo-a/telemetry', { seq }, { seq })));
    for (const m of messages) await c.publishAsync('devices/thermo-a/telemetry', m, { qos: 1 });
    await c.publishAsync('devices/thermo-a/telemetry/hall', await sign(a, 'devices/thermo-a/telemetry/hall', 'x', { kid: a.kid }), { qos: 1 });
    await waitFor(() => got.length === 4);
    expect(got.slice(0, 3).map((m) => m.payload)).toEqual(messages);
    expect(await fx.metric('latchkey_broker_signed_publishes_total', { result: 'verified', reason: 'ok' })).toBe(4);
    expect(c.connected).toBe(true);
  });

  it('refuses an unsigned publish on a covered topic', async () => {
    await refused(await fx.connect('thermo-a', await a.token()), 'devices/thermo-a/telemetry', '{"celsius":21.5}', 'message_malformed');
  });

  it('refuses a changed body, a message moved between the device’s topics, another device’s key, a connect token', async () => {
    const genuine = await sign(a, 'devices/thermo-a/telemetry', { celsius: 21.5 });
    const [h, p, s] = genuine.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const changed = `${h}.${Buffer.from(JSON.stringify({ ...claims, body: Buffer.from('{"celsius":99}').toString('base64url') })).toString('base64url')}.${s}`;
    await refused(await fx.connect('thermo-a', await a.token()), 'devices/thermo-a/telemetry', changed, 'signature_invalid');
    await refused(await fx.connect('thermo-a', await a.token()), 'devices/thermo-a/telemetry/hall', genuine, 'topic_mismatch');
    const byB = await signDeviceMessage({ deviceId: 'thermo-a', topic: 'devices/thermo-a/telemetry', payload: {}, seq: 1, privateKey: b.privateKey, clock: fx.clock });
    await refused(await fx.connect('thermo-a', await a.token()), 'devices/thermo-a/telemetry', byB, 'signature_invalid');
    await refused(await fx.connect('thermo-a', await a.token()), 'devices/thermo-a/telemetry', await a.token(), 'header_invalid');
  });

  it('holds for service accounts too: a bridge may forward a genuine message, not alter or forge one', async () => {
    const genuine = await sign(a, 'devices/thermo-a/telemetry', { celsius: 21.5 });
    const c = await fx.connect('svc:bridge', await bridge.token());
    await c.publishAsync('devices/thermo-a/telemetry', genuine, { qos: 1 });
    await waitFor(() => got.length === 1);
    await refused(c, 'devices/thermo-b/telemetry', genuine, 'signature_invalid');
    await refused(await fx.connect('svc:bridge', await bridge.token()), 'devices/thermo-a/telemetry', 'forged', 'message_malformed');
    await refused(await fx.connect('svc:bridge', await bridge.token()), 'devices/nobody-1/telemetry', await sign(a, 'devices/thermo-a/telemetry', {}), 'unknown_principal');
  });

  it('leaves uncovered topics alone: state, replies, and cloud → device topics even under #', async () => {
    const c = await fx.connect('thermo-a', await a.token());
    await c.publishAsync('devices/thermo-a/state', '{"mode":"heat"}', { qos: 1 });
    await c.publishAsync('devices/thermo-a/replies/c1', '{"ok":true}', { qos: 1 });
    await waitFor(() => got.length === 2);
    const all = await startBroker({ requireSignedTopics: ['#'] });
    try {
      const svc = await all.service('cmd', { publish: ['devices/+/commands/#'], subscribe: [] });
      const sc = await all.connect('svc:cmd', await svc.token());
      await sc.publishAsync('devices/thermo-a/commands/reboot', '{"id":"c1","params":{}}', { qos: 1 });
      expect(sc.connected).toBe(true);
      const dev = await all.device('thermo-z');
      const dc = await all.connect('thermo-z', await dev.token());
      const closed = closedSoon(dc);
      dc.publish('devices/thermo-z/state', '{"mode":"heat"}', { qos: 1 });
      await closed; // under '#', state needs a signature too
    } finally {
      await all.close();
    }
  });

  it('refuses a message from a key the device no longer has (the cache follows the registry)', async () => {
    const old = await sign(a, 'devices/thermo-a/telemetry', { n: 1 });
    const bc0 = await fx.connect('svc:bridge', await bridge.token());
    await bc0.publishAsync('devices/thermo-a/telemetry', old, { qos: 1 }); // the broker now caches thermo-a's keys
    await waitFor(() => got.length === 1);
    await fx.registry.devices.addCredential('thermo-a', parsePublicKey(newKeyPair().pem), null, 'test');
    await fx.registry.devices.removeCredential('thermo-a', a.kid, 'test');
    const bc = await fx.connect('svc:bridge', await bridge.token());
    await refused(bc, 'devices/thermo-a/telemetry', old, 'signature_invalid');
  });
});

describe('a signed state report', () => {
  it('is stored by its body when it verifies with the device’s keys; a forged one is not stored', async () => {
    const c = await fx.connect('thermo-a', await a.token());
    await c.publishAsync('devices/thermo-a/state', await sign(a, 'devices/thermo-a/state', { mode: 'heat' }), { qos: 1 });
    await waitFor(async () => (await fx.registry.configState.getState('thermo-a')) !== null);
    expect((await fx.registry.configState.getState('thermo-a'))?.state).toEqual({ mode: 'heat' });
    const forged = await signDeviceMessage({ deviceId: 'thermo-a', topic: 'devices/thermo-a/state', payload: { mode: 'off' }, seq: 2, privateKey: b.privateKey, clock: fx.clock });
    await c.publishAsync('devices/thermo-a/state', forged, { qos: 1 });
    await waitFor(() => got.some((m) => m.payload === forged));
    expect((await fx.registry.configState.getState('thermo-a'))?.state).toEqual({ mode: 'heat' });
    expect(fx.log.text()).toContain('not stored');
  });
});

describe('broker config', () => {
  it('refuses requireSignedTopics that are not topic filters', async () => {
    for (const bad of [['devices/#/x'], ['$SYS/#'], 'devices/#', [7], Array(101).fill('#')]) {
      const r = checkBrokerConfig({ requireSignedTopics: bad as never });
      expect(r.ok, JSON.stringify(bad).slice(0, 40)).toBe(false);
    }
    expect(checkBrokerConfig({ requireSignedTopics: ['devices/+/telemetry/#', '#'] }).ok).toBe(true);
  });
});
