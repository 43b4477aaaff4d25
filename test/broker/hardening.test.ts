/** protocol.md §Limits and §MQTT CONNECT throttling: hostile input is closed, the broker keeps serving. */
import { afterEach, describe, expect, it } from 'vitest';
import { connackFor, connectPacket, publishPacket, rawConnect, varint } from './helpers/raw-mqtt.ts';
import { startBroker, waitFor, type BrokerFixture } from './helpers/broker-fixture.ts';
import { sign } from 'node:crypto';
import { MAX_TOKEN_BYTES, MIN_PACKET_SIZE } from '@latchkey/device-sdk/protocol';

let fx: BrokerFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

async function stillServing(f: BrokerFixture, id = 'probe-1'): Promise<void> {
  const probe = (await f.registry.devices.find(id)) === null ? await f.device(id) : null;
  const token = probe === null ? '' : await probe.token();
  expect(await connackFor(f.port, { clientId: id, username: 'u', password: token })).toBe(0);
}

describe('per-address failure throttling', () => {
  it('engages after authFailureLimit refusals (5 without checking the token) and lifts after the window', async () => {
    fx = await startBroker({ authFailureLimit: 3 });
    const dev = await fx.device('thermo-1');
    for (let i = 0; i < 3; i++) {
      expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: 'bad.token.here' })).toBe(4);
    }
    const verifiesBefore = await verifyCount(fx);
    const good = await dev.token();
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: good })).toBe(5);
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: good })).toBe(5);
    expect(await verifyCount(fx)).toBe(verifiesBefore); // the token was not checked
    expect(await fx.metric('latchkey_broker_throttled_total')).toBe(2);
    const audited = async () => (await fx!.registry.audit.list({ limit: 100, target: 'thermo-1' })).filter((e) => e.detail.reason === 'throttled');
    await waitFor(async () => (await audited()).length > 0);
    expect(await audited()).toHaveLength(1); // the first throttled attempt of a window is audited, not every one
    fx.clock.advance(59_000);
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: good })).toBe(5);
    fx.clock.advance(1_000);
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: good })).toBe(0);
  });

  it('is off with authFailureLimit 0', async () => {
    fx = await startBroker({ authFailureLimit: 0 });
    const dev = await fx.device('thermo-1');
    for (let i = 0; i < 80; i++) expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: 'x' })).toBe(4);
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token() })).toBe(0);
  });
});

describe('hostile connections are closed and the broker keeps serving', () => {
  it('garbage bytes', async () => {
    fx = await startBroker();
    const conn = await rawConnect(fx.port);
    conn.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await conn.closed;
    const conn2 = await rawConnect(fx.port);
    conn2.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01]));
    await conn2.closed;
    await stillServing(fx);
  });

  it('a silent socket is closed after connectTimeout', async () => {
    fx = await startBroker({ connectTimeout: 0.3 });
    const conn = await rawConnect(fx.port);
    await waitFor(() => conn.isClosed(), 3000);
    expect(conn.received().length).toBe(0);
    await stillServing(fx);
  });

  it('half a CONNECT is closed after connectTimeout', async () => {
    fx = await startBroker({ connectTimeout: 0.3 });
    const dev = await fx.device('thermo-1');
    const full = connectPacket({ clientId: 'thermo-1', username: 'u', password: await dev.token() });
    const conn = await rawConnect(fx.port);
    conn.send(full.subarray(0, Math.floor(full.length / 2)));
    await waitFor(() => conn.isClosed(), 3000);
    expect(conn.received().length).toBe(0);
    await stillServing(fx);
  });

  it('a PUBLISH claiming 10 MB is closed after its header, before the body is buffered', async () => {
    fx = await startBroker();
    const dev = await fx.device('thermo-1');
    const conn = await rawConnect(fx.port);
    conn.send(connectPacket({ clientId: 'thermo-1', username: 'u', password: await dev.token() }));
    expect(await conn.connack()).toBe(0);
    const tenMb = 10 * 1024 * 1024;
    conn.send(Buffer.from([0x30, ...varint(tenMb)]));
    conn.send(Buffer.alloc(1024, 0x41));
    await conn.closed;
    expect(await fx.metric('latchkey_broker_connections_closed_total', { reason: 'packet_too_large' })).toBe(1);
    await stillServing(fx);
  });

  it('a CONNECT claiming 10 MB is closed before authentication', async () => {
    fx = await startBroker();
    const conn = await rawConnect(fx.port);
    conn.send(Buffer.from([0x10, ...varint(10 * 1024 * 1024), 0x00, 0x04]));
    await conn.closed;
    expect(conn.received().length).toBe(0);
    await stillServing(fx);
  });

  it('maxPacketSize is exact: a packet of that size passes, one byte more closes', async () => {
    const max = MIN_PACKET_SIZE;
    fx = await startBroker({ maxPacketSize: max });
    const dev = await fx.device('thermo-1');
    const conn = await rawConnect(fx.port);
    conn.send(connectPacket({ clientId: 'thermo-1', username: 'u', password: await dev.token() }));
    expect(await conn.connack()).toBe(0);
    const topic = 'devices/thermo-1/telemetry';
    const fits = publishPacket(topic, Buffer.alloc(max - 3 - 2 - topic.length, 0x31));
    expect(fits.length).toBe(max);
    const got: string[] = [];
    fx.broker.messaging.subscribe('devices/+/telemetry', (t) => got.push(t));
    conn.send(fits);
    await waitFor(() => got.length === 1);
    conn.send(publishPacket(topic, Buffer.alloc(max - 3 - 2 - topic.length + 1, 0x31)));
    await conn.closed;
    expect(got).toHaveLength(1);
  });

  it('the smallest maxPacketSize still admits a CONNECT carrying a token at the 4096-byte cap, a long client id and a will', async () => {
    fx = await startBroker({ maxPacketSize: MIN_PACKET_SIZE });
    const id = `d${'x'.repeat(63)}`;
    const dev = await fx.device(id);
    const now = Math.floor(fx.clock() / 1000);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    // pad the audience list until the token is exactly MAX_TOKEN_BYTES long
    let token = '';
    for (let pad = 2800; pad < 3100 && token.length !== MAX_TOKEN_BYTES; pad++) {
      const input = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ sub: id, aud: ['latchkey', 'p'.repeat(pad)], iat: now, exp: now + 600, ...(pad % 2 === 0 ? {} : { n: 1 }) })}`;
      token = `${input}.${sign('sha256', Buffer.from(input), { key: dev.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    }
    expect(token.length).toBe(MAX_TOKEN_BYTES);
    const will = { topic: `devices/${id}/state`, payload: JSON.stringify({ online: false, note: 'n'.repeat(2000) }) };
    const connect = connectPacket({ clientId: id, username: id, password: token, will });
    expect(connect.length).toBeLessThanOrEqual(MIN_PACKET_SIZE);
    const conn = await rawConnect(fx.port);
    conn.send(connect);
    expect(await conn.connack()).toBe(0);
  });
});

describe('single-use jti', () => {
  it('with requireJti a replayed token is refused (4) and a token without jti too', async () => {
    fx = await startBroker({ requireJti: true, authFailureLimit: 0 });
    const dev = await fx.device('thermo-1');
    const once = await dev.token({ jti: true });
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: once })).toBe(0);
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: once })).toBe(4);
    const lastError = async () => (await fx!.registry.devices.get('thermo-1')).status.lastError?.code;
    await waitFor(async () => (await lastError()) === 'jti_replayed');
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token() })).toBe(4);
    await waitFor(async () => (await lastError()) === 'jti_missing');
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token({ jti: true }) })).toBe(0);
  });
});

describe('bounded offline queues', () => {
  it('keeps maxQueuedMessages QoS 1 messages for an offline persistent session and counts the drops', async () => {
    fx = await startBroker({ maxQueuedMessages: 5 });
    const dev = await fx.device('thermo-1');
    const c = await fx.connect('thermo-1', await dev.token(), { clean: false });
    await c.subscribeAsync('devices/thermo-1/commands/#', { qos: 1 });
    await c.endAsync();
    for (let i = 0; i < 8; i++) {
      await fx.broker.messaging.publish(`devices/thermo-1/commands/c${i}`, Buffer.from(`{"id":"${i}","params":{}}`), { qos: 1, retain: false });
    }
    expect(await fx.metric('latchkey_broker_dropped_messages_total', { reason: 'offline_queue_full' })).toBe(3);
    const got: string[] = [];
    const back = await fx.connect('thermo-1', await dev.token(), { clean: false, resubscribe: false });
    back.on('message', (topic) => got.push(topic));
    await waitFor(() => got.length === 5);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([0, 1, 2, 3, 4].map((i) => `devices/thermo-1/commands/c${i}`));
    // online again: nothing is dropped for a connected client
    await fx.broker.messaging.publish('devices/thermo-1/commands/live', Buffer.from('{}'), { qos: 1, retain: false });
    await waitFor(() => got.length === 6);
  });
});

async function verifyCount(f: BrokerFixture): Promise<number> {
  const m = await f.metrics.getSingleMetric('latchkey_broker_verify_seconds')?.get();
  return m?.values.find((v) => (v as { metricName?: string }).metricName === 'latchkey_broker_verify_seconds_count')?.value ?? 0;
}

