import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signDeviceMessage } from '@latchkey/device-sdk';
import { startBroker, waitFor, type BrokerFixture, type TestPrincipal } from './helpers/broker-fixture.ts';

/**
 * protocol.md §Signed messages at the broker, per device: metadata `signedTelemetry: "required"`
 * makes the broker require signed messages on that device's telemetry topics only, without any
 * `requireSignedTopics`; a metadata change applies to the next publish (the change feed).
 */
let fx: BrokerFixture;
let strict: TestPrincipal;
let lax: TestPrincipal;
let got: string[];

beforeEach(async () => {
  fx = await startBroker({ authFailureLimit: 0 });
  strict = await fx.device('strict-1');
  await fx.registry.devices.update('strict-1', { metadata: { signedTelemetry: 'required' } }, 'test');
  lax = await fx.device('lax-1');
  const w = await fx.service('watcher', { publish: [], subscribe: ['devices/#'] });
  const watcher = await fx.connect('svc:watcher', await w.token());
  got = [];
  watcher.on('message', (topic) => got.push(topic));
  await watcher.subscribeAsync('devices/#', { qos: 1 });
});
afterEach(() => fx.close());

const sign = (d: TestPrincipal, topic: string) => signDeviceMessage({ deviceId: d.id, topic, payload: { celsius: 21 }, seq: 1, privateKey: d.privateKey, clock: fx.clock });

describe('signedTelemetry: "required" in device metadata', () => {
  it('refuses that device’s unsigned telemetry (closing its connection), delivers its signed telemetry and its unsigned state', async () => {
    const c = await fx.connect('strict-1', await strict.token());
    await c.publishAsync('devices/strict-1/telemetry', await sign(strict, 'devices/strict-1/telemetry'), { qos: 1 });
    await c.publishAsync('devices/strict-1/state', '{"mode":"heat"}', { qos: 1 });
    await waitFor(() => got.length === 2);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('devices/strict-1/telemetry/hall', '{"celsius":35}', { qos: 1 });
    await closed;
    expect(await fx.metric('latchkey_broker_signed_publishes_total', { result: 'refused', reason: 'message_malformed' })).toBe(1);
    expect(got).toEqual(['devices/strict-1/telemetry', 'devices/strict-1/state']);
  });

  it('leaves other devices alone, and a bridge forwarding that device’s telemetry must forward it signed', async () => {
    const c = await fx.connect('lax-1', await lax.token());
    await c.publishAsync('devices/lax-1/telemetry', '{"celsius":20}', { qos: 1 });
    const bridge = await fx.service('bridge', { publish: ['devices/+/telemetry/#'], subscribe: [] });
    const b = await fx.connect('svc:bridge', await bridge.token());
    await b.publishAsync('devices/strict-1/telemetry', await sign(strict, 'devices/strict-1/telemetry'), { qos: 1 }); // strict-1 never connected: read from the registry
    await waitFor(() => got.length === 2);
    const closed = new Promise<void>((r) => b.once('close', () => r()));
    b.publish('devices/strict-1/telemetry', '{"celsius":99}', { qos: 1 });
    await closed;
    expect(got).toEqual(['devices/lax-1/telemetry', 'devices/strict-1/telemetry']);
  });

  it('follows a metadata change at once (the change feed invalidates the broker’s cache)', async () => {
    const c = await fx.connect('strict-1', await strict.token());
    await fx.registry.devices.update('strict-1', { metadata: {} }, 'test');
    await waitFor(async () => {
      await c.publishAsync('devices/strict-1/telemetry', '{"celsius":20}', { qos: 1 });
      return got.includes('devices/strict-1/telemetry');
    });
    await fx.registry.devices.update('lax-1', { metadata: { signedTelemetry: 'required' } }, 'test');
    const l = await fx.connect('lax-1', await lax.token());
    const closed = new Promise<void>((r) => l.once('close', () => r()));
    l.publish('devices/lax-1/telemetry', '{"celsius":20}', { qos: 1 });
    await closed;
    expect(got.filter((t) => t === 'devices/lax-1/telemetry')).toEqual([]);
  });
});
