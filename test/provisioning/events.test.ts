import type { KeyObject } from 'node:crypto';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetEvents, observeRegistry, sseFrame, type FleetEvent } from '../../provisioning/src/index.ts';
import { openSse } from '../helpers/sse.ts';
import { Registry as MetricsRegistry } from 'prom-client';
import { createBroker } from '../../broker/src/index.ts';
import { ADMIN, deviceKey, problem, startApi, type HttpFixture } from './http-fixture.ts';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { BACKENDS, type BackendName } from '../registry/registry-fixture.ts';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

/** The API with /v1/events over observed registry writes; with `withBroker`, the real broker's messaging (port 0). */
async function setup(withBroker = false, backend: BackendName = 'sqlite'): Promise<{ fx: HttpFixture; events: FleetEvents; observed: ReturnType<typeof observeRegistry>; keys: Map<string, KeyObject> }> {
  const events = new FleetEvents();
  // the registry is created by the fixture; observe it after
  const fx = await startApi({ events, backend, ...(withBroker ? { broker: {} } : {}) });
  closers.push(() => fx.close());
  const observed = observeRegistry(fx.registry, events, fx.clock);
  closers.push(async () => observed.close());
  const keys = new Map<string, KeyObject>();
  for (const id of ['ev-1', 'ev-2', 'ev-3']) {
    const key = deviceKey();
    keys.set(id, key.privateKey);
    await fx.registry.devices.create({ id, key: parsePublicKey(key.pem) }, 'test');
  }
  return { fx, events, observed, keys };
}

describe.each(BACKENDS)('fleet events from what the registry records, on %s', (backend) => {
  it('publishes the stored status after a status flush (a takeover stays connected), the connected count, refusals and changes', async () => {
    const { fx, events, observed } = await setup(false, backend);
    const seen: FleetEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const at = fx.clock();
    await observed.brokerRegistry.recordSessionEvents!([
      { deviceId: 'ev-1', type: 'connected', at },
      { deviceId: 'ev-2', type: 'connected', at },
      { deviceId: 'ev-2', type: 'connected', at },
      { deviceId: 'ev-2', type: 'disconnected', at },
    ]);
    expect(seen.filter((e) => e.type === 'status').map((e) => e.type === 'status' && [e.deviceId, e.connected])).toEqual([
      ['ev-1', true],
      ['ev-2', true],
    ]);
    expect(seen.at(-1)).toEqual({ type: 'fleet', connected: 2, at });
    seen.length = 0;
    await observed.brokerRegistry.recordAuthFailure({ principal: 'ev-3', clientId: 'ev-3', reason: 'token_expired', remoteAddress: '127.0.0.1', at });
    expect(seen).toEqual([{ type: 'refusal', principal: 'ev-3', deviceId: 'ev-3', reason: 'token_expired', remoteAddress: '127.0.0.1', at, count: 1 }]);
    expect((await fx.registry.devices.get('ev-3')).status.lastError).toEqual({ code: 'token_expired', at }); // stored as before
    seen.length = 0;
    // a summary of repeats (issue 16) carries its count and reasons; no device when it spans several
    const repeated = { count: 7, reasons: { token_expired: 5, signature_invalid: 2 }, since: at - 60_000 };
    await observed.brokerRegistry.recordAuthFailure({ principal: null, clientId: '', reason: 'signature_invalid', remoteAddress: '10.0.0.9', at, repeated });
    expect(seen).toEqual([{ type: 'refusal', principal: null, deviceId: null, reason: 'signature_invalid', remoteAddress: '10.0.0.9', at, ...repeated }]);
    seen.length = 0;
    // each flush's last refusals: the devices' statuses, with the refusal (unknown ids left out)
    await observed.brokerRegistry.recordLastErrors([['ev-2', 'signature_invalid', at], ['nobody-1', 'unknown_principal', at]]);
    expect(seen).toEqual([expect.objectContaining({ type: 'status', deviceId: 'ev-2', connected: true, lastError: { code: 'signature_invalid', at } })]);
    seen.length = 0;
    await fx.registry.devices.createMany([{ id: 'ev-4', key: parsePublicKey(deviceKey().pem) }, { id: 'ev-5', key: parsePublicKey(deviceKey().pem) }], 'admin');
    expect(seen).toEqual([]); // registrations are not streamed (a batch would flood every reader)
    await fx.registry.devices.update('ev-1', { blocked: true }, 'admin');
    // the change at once; the stored status (read after it) follows
    await expect.poll(() => seen.length).toBe(3);
    expect(seen.map((e) => e.type)).toEqual(['change', 'status', 'fleet']);
    expect(seen[1]).toMatchObject({ deviceId: 'ev-1', blocked: true });
  });

  it('a listener that throws does not stop the others or the registry write', async () => {
    const errors: unknown[] = [];
    const events = new FleetEvents((e) => errors.push(e));
    const got: string[] = [];
    events.subscribe(() => {
      throw new Error('boom');
    });
    events.subscribe((e) => got.push(e.type));
    events.emit({ type: 'fleet', connected: 0, at: 1 });
    expect(got).toEqual(['fleet']);
    expect(errors).toHaveLength(1);
  });
});

describe('status flips as they happen (the broker tees its session events)', () => {
  it('publishes a connect, a takeover and a disconnect at once, without waiting for the status write', async () => {
    const { fx, events, observed, keys } = await setup();
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    // a status write once an hour: whatever arrives during the test did not come from it
    const broker = createBroker({
      config: { host: '127.0.0.1', mqttPort: 0, statusFlushInterval: 3600 },
      registry: observed.brokerRegistry,
      onSessionEvent: observed.onSessionEvent,
      clock: fx.clock,
      log: quiet,
      metrics: new MetricsRegistry(),
    });
    await broker.listen();
    closers.push(() => broker.close());
    const seen: FleetEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const next = async (pred: (e: FleetEvent) => boolean): Promise<FleetEvent> => {
      await expect.poll(() => seen.some(pred), { timeout: 5_000 }).toBe(true);
      const i = seen.findIndex(pred);
      return seen.splice(0, i + 1).at(-1)!;
    };
    const connect = async () => {
      const { token } = await mintConnectToken({ subject: 'ev-1', privateKey: keys.get('ev-1')!, clock: fx.clock });
      return mqtt.connectAsync(`mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, { clientId: 'ev-1', username: 'x', password: token, reconnectPeriod: 0, protocolVersion: 4 });
    };
    const first = await connect();
    expect(await next((e) => e.type === 'status')).toMatchObject({ deviceId: 'ev-1', connected: true, lastConnectedAt: fx.clock(), lastSeenAt: fx.clock() });
    expect(await next((e) => e.type === 'fleet')).toMatchObject({ connected: 1 });
    expect((await fx.registry.devices.get('ev-1')).status.connected).toBe(false); // not written yet
    // a takeover: the same client id again; the old session's end does not make it offline
    const second = await connect();
    await expect.poll(() => first.connected, { timeout: 5_000 }).toBe(false);
    await expect.poll(() => seen.filter((e) => e.type === 'status').length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    expect(seen.filter((e) => e.type === 'status').at(-1)).toMatchObject({ deviceId: 'ev-1', connected: true });
    seen.length = 0;
    await second.endAsync();
    expect(await next((e) => e.type === 'status')).toMatchObject({ deviceId: 'ev-1', connected: false, lastDisconnectedAt: fx.clock() });
    expect(await next((e) => e.type === 'fleet')).toMatchObject({ connected: 0 });
  });
});

describe('SSE framing', () => {
  it('writes one event per frame; data with line breaks cannot end the event or add a field', () => {
    const frame = sseFrame('refusal', { text: 'a\n\nevent: x\r\ndata: y' });
    expect(frame.split('\n\n')).toEqual([expect.stringMatching(/^event: refusal\ndata: \{.*\}$/), '']);
    expect(frame.match(/\n/g)).toHaveLength(3);
    expect(() => sseFrame('bad name\n', {})).toThrow(TypeError);
  });
});

describe('GET /v1/events', () => {
  it('needs the admin token and a valid query (problem+json)', async () => {
    const { fx } = await setup();
    problem(await fx.api('GET', '/v1/events', undefined, {}), 401, 'unauthorized');
    problem(await fx.api('GET', '/v1/events?deviceId=%3Cx%3E'), 400, 'validation_failed');
    problem(await fx.api('GET', '/v1/events?events=status,nope'), 400, 'validation_failed');
    problem(await fx.api('GET', '/v1/events?events=telemetry'), 400, 'validation_failed');
    problem(await fx.api('GET', `/v1/events?${Array.from({ length: 51 }, (_, i) => `deviceId=dev-${i}`).join('&')}`), 400, 'validation_failed');
  });

  it('streams hello and a snapshot first, then live events of the chosen devices only', async () => {
    const { fx, observed } = await setup();
    const at = fx.clock();
    await observed.brokerRegistry.recordSessionEvents!([{ deviceId: 'ev-2', type: 'connected', at }]);
    const sse = await openSse(`${fx.url}/v1/events?deviceId=ev-1&deviceId=ev-2`, ADMIN);
    closers.push(async () => sse.close());
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(sse.headers['cache-control']).toBe('no-store');
    expect((await sse.next()).event).toBe('hello');
    expect(sse.raw().startsWith('retry: 2000\n\n')).toBe(true);
    const snapshot = [(await sse.next('status')).json, (await sse.next('status')).json];
    expect(snapshot.map((s) => [s.deviceId, s.connected])).toEqual([
      ['ev-1', false],
      ['ev-2', true],
    ]);
    await observed.brokerRegistry.recordAuthFailure({ principal: 'ev-3', clientId: 'ev-3', reason: 'signature_invalid', remoteAddress: null, at });
    await observed.brokerRegistry.recordAuthFailure({ principal: 'ev-1', clientId: 'ev-1', reason: 'token_expired', remoteAddress: null, at });
    const refusal = await sse.next('refusal');
    expect(refusal.json).toMatchObject({ deviceId: 'ev-1', reason: 'token_expired' }); // ev-3's was filtered out
    await observed.brokerRegistry.recordSessionEvents!([{ deviceId: 'ev-1', type: 'connected', at }]);
    expect((await sse.next('status')).json).toMatchObject({ deviceId: 'ev-1', connected: true });
    expect((await sse.next('fleet')).json).toMatchObject({ connected: 2 });
  });

  it('carries the telemetry of a chosen device, cut to 4 KiB', async () => {
    const { fx, keys } = await setup(true);
    const sse = await openSse(`${fx.url}/v1/events?deviceId=ev-1&deviceId=ev-2&events=telemetry`, ADMIN);
    closers.push(async () => sse.close());
    await sse.next('hello');
    const connect = async (id: string) => {
      const { token } = await mintConnectToken({ subject: id, privateKey: keys.get(id)!, clock: fx.clock });
      const client = await mqtt.connectAsync(fx.mqttUrl, { clientId: id, username: id, password: token, reconnectPeriod: 0, protocolVersion: 4 });
      closers.push(() => client.endAsync());
      return client;
    };
    const client = await connect('ev-1');
    await (await connect('ev-3')).publishAsync('devices/ev-3/telemetry', '{"not":"chosen"}', { qos: 1 });
    await client.publishAsync('devices/ev-1/telemetry/temp', '{"celsius":21.5}', { qos: 1 });
    await client.publishAsync('devices/ev-1/telemetry', 'x'.repeat(5000), { qos: 1 });
    expect((await sse.next('telemetry')).json).toMatchObject({ deviceId: 'ev-1', topic: 'devices/ev-1/telemetry/temp', payload: '{"celsius":21.5}', truncated: false, skipped: 0 });
    const big = (await sse.next('telemetry')).json;
    expect(big.truncated).toBe(true);
    expect(big.payload).toHaveLength(4096);
  });

  it('app.close() ends open streams (preClose) instead of waiting for the client', async () => {
    const { fx } = await setup();
    const sse = await openSse(`${fx.url}/v1/events`, ADMIN);
    await sse.next('hello');
    await fx.app.close();
    await sse.ended;
    expect(sse.raw()).toContain('event: hello');
  });
});
