/**
 * broker/src/gcp/gcp-sessions.ts on a plain aedes with real clients: the config a Cloud IoT Core
 * device gets on every SUBSCRIBE, sent again until its PUBACK, superseded by a newer version, and
 * commands tracked to their PUBACK (protocol.md §Cloud IoT Core config, §Cloud IoT Core commands).
 */
import type { Aedes, Client } from 'aedes';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { DELIVERY_PROPERTY, GcpSessions, type GcpConfig } from '../../broker/src/gcp/gcp-sessions.ts';
import { waitFor } from './helpers/broker-fixture.ts';
import { plainAedes } from './helpers/plain-aedes.ts';
import { connectPacket, pubackPacket, rawConnect, readPublish, splitPackets, subscribePacket, type RawConnection } from './helpers/raw-mqtt.ts';

const CONFIG = '/devices/dev-1/config';
const plain = plainAedes();

/** A plain aedes where every client id `gcp-…` is a Cloud IoT Core session of device dev-1. */
async function start() {
  const configs = new Map<string, GcpConfig>([['dev-1', { version: 3, data: Buffer.from([0, 1, 2, 0xff]) }]]);
  const acks: [string, number][] = [];
  const delivered: string[] = [];
  let now = 1_000_000;
  let gcp!: GcpSessions;
  const { aedes, port, url } = await plain.start({ authorizeForward: (client, packet) => gcp.forward(client, packet) });
  gcp = new GcpSessions({
    aedes,
    clock: () => now,
    findConfig: async (id) => configs.get(id) ?? null,
    recordConfigAck: async (id, version) => void acks.push([id, version]),
    resendMs: 10_000,
    onCommandDelivered: (id) => delivered.push(id),
    log: { error: () => undefined },
  });
  aedes.on('clientReady', (client: Client) => client.id.startsWith('gcp-') && gcp.attach(client, 'dev-1'));
  aedes.on('clientDisconnect', (client: Client) => gcp.detach(client));
  aedes.on('subscribe', (subs, client) => gcp.onSubscribe(client, subs));
  return { aedes, gcp, port, configs, acks, delivered, advance: (ms: number) => (now += ms), url };
}

/** A device that PUBACKs only when told to. */
async function withholding(port: number): Promise<RawConnection & { publishes(): ReturnType<typeof readPublish>[] }> {
  const conn = await rawConnect(port);
  conn.send(connectPacket({ clientId: 'gcp-raw', keepalive: 0 }));
  expect(await conn.connack()).toBe(0);
  return Object.assign(conn, { publishes: () => splitPackets(conn.received()).filter((p) => p.type === 3).map(readPublish) });
}

describe('config on every SUBSCRIBE', () => {
  it('sends the latest config as raw bytes at QoS 1, and again on re-subscribe; each PUBACK is recorded', async () => {
    const b = await start();
    const c = await mqtt.connectAsync(b.url, { clientId: 'gcp-1', reconnectPeriod: 0 });
    const got: Buffer[] = [];
    c.on('message', (topic, payload, packet) => topic === CONFIG && packet.qos === 1 && got.push(payload));
    await c.subscribeAsync(CONFIG, { qos: 1 });
    await waitFor(() => got.length === 1 && b.acks.length === 1);
    expect(got[0]).toEqual(Buffer.from([0, 1, 2, 0xff]));
    expect(b.acks).toEqual([['dev-1', 3]]);
    await c.unsubscribeAsync(CONFIG);
    await c.subscribeAsync(CONFIG, { qos: 1 });
    await waitFor(() => got.length === 2 && b.acks.length === 2);
    b.gcp.sweep(b.advance(60_000)); // acknowledged: nothing is sent again
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toHaveLength(2);
    await c.endAsync();
  });

  it('at QoS 0 the config is sent once per SUBSCRIBE, never again, and no ack is recorded', async () => {
    const b = await start();
    const c = await mqtt.connectAsync(b.url, { clientId: 'gcp-0', reconnectPeriod: 0 });
    const got: number[] = [];
    c.on('message', (_t, _p, packet) => got.push(packet.qos));
    await c.subscribeAsync(CONFIG, { qos: 0 });
    await waitFor(() => got.length === 1);
    b.gcp.sweep(b.advance(60_000));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([0]);
    expect(b.acks).toEqual([]);
    await c.endAsync();
  });

  it('a device with no config gets nothing', async () => {
    const b = await start();
    b.configs.clear();
    const c = await mqtt.connectAsync(b.url, { clientId: 'gcp-none', reconnectPeriod: 0 });
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    await c.subscribeAsync(CONFIG, { qos: 1 });
    await new Promise((r) => setTimeout(r, 150));
    expect(got).toEqual([]);
    await c.endAsync();
  });

  it('resends until PUBACK; a newer version supersedes the unacknowledged one, whose late PUBACK names its own version', async () => {
    const b = await start();
    const d = await withholding(b.port);
    d.send(subscribePacket(CONFIG, 1, 7));
    await waitFor(() => d.publishes().length === 1);
    const first = d.publishes()[0]!;
    expect(first).toMatchObject({ topic: CONFIG, qos: 1, payload: Buffer.from([0, 1, 2, 0xff]) });
    // no PUBACK: the sweep sends it again once 10 s have passed, not before
    b.gcp.sweep(b.advance(9_000));
    await new Promise((r) => setTimeout(r, 100));
    expect(d.publishes()).toHaveLength(1);
    b.gcp.sweep(b.advance(1_000));
    await waitFor(() => d.publishes().length === 2);
    // a newer version while v3 is unacknowledged: v4 is sent at once, and only v4 from then on
    b.configs.set('dev-1', { version: 4, data: Buffer.from('v4') });
    b.gcp.onConfigChanged('dev-1');
    await waitFor(() => d.publishes().length === 3);
    expect(d.publishes()[2]!.payload.toString()).toBe('v4');
    b.gcp.sweep(b.advance(10_000));
    await waitFor(() => d.publishes().length === 4);
    expect(d.publishes()[3]!.payload.toString()).toBe('v4');
    // the late PUBACK of the first v3 message reports v3 (the registry keeps only the latest's), v4 stays pending
    d.send(pubackPacket(first.messageId!));
    await waitFor(() => b.acks.length === 1);
    expect(b.acks).toEqual([['dev-1', 3]]);
    b.gcp.sweep(b.advance(10_000));
    await waitFor(() => d.publishes().length === 5);
    d.send(pubackPacket(d.publishes()[4]!.messageId!));
    await waitFor(() => b.acks.length === 2);
    expect(b.acks[1]).toEqual(['dev-1', 4]);
    b.gcp.sweep(b.advance(60_000));
    await new Promise((r) => setTimeout(r, 100));
    expect(d.publishes()).toHaveLength(5);
    d.socket.destroy();
  });

  it('forgets a session when it closes', async () => {
    const b = await start();
    const c = await mqtt.connectAsync(b.url, { clientId: 'gcp-2', reconnectPeriod: 0 });
    await waitFor(() => b.gcp.size === 1);
    await c.endAsync();
    await waitFor(() => b.gcp.size === 0);
  });
});

describe('commands tracked to their PUBACK', () => {
  const command = (aedes: Aedes, id: string, qos: 0 | 1) =>
    aedes.publish(
      { cmd: 'publish', topic: '/devices/dev-1/commands/fw', payload: Buffer.from('go'), qos, retain: false, dup: false, properties: { userProperties: { [DELIVERY_PROPERTY]: id } } } as never,
      () => undefined,
    );

  it('a QoS 1 subscription: delivered once the device PUBACKs, without the mark on the wire', async () => {
    const b = await start();
    const d = await withholding(b.port);
    d.send(subscribePacket('/devices/dev-1/commands/#', 1, 3));
    await waitFor(() => splitPackets(d.received()).some((p) => p.type === 9));
    command(b.aedes, 'cmd-1', 1);
    await waitFor(() => d.publishes().length === 1);
    const p = d.publishes()[0]!;
    expect(p).toMatchObject({ topic: '/devices/dev-1/commands/fw', qos: 1, payload: Buffer.from('go') });
    expect(b.delivered).toEqual([]);
    d.send(pubackPacket(p.messageId!));
    await waitFor(() => b.delivered.length === 1);
    expect(b.delivered).toEqual(['cmd-1']);
    d.socket.destroy();
  });

  it('a QoS 0 subscription (as Google’s samples make): delivered when written', async () => {
    const b = await start();
    const c = await mqtt.connectAsync(b.url, { clientId: 'gcp-3', reconnectPeriod: 0 });
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    await c.subscribeAsync('/devices/dev-1/commands/#', { qos: 0 });
    command(b.aedes, 'cmd-0', 1);
    await waitFor(() => got.length === 1 && b.delivered.length === 1);
    expect(b.delivered).toEqual(['cmd-0']);
    await c.endAsync();
  });
});
