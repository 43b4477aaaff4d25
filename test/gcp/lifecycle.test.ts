/**
 * The Cloud IoT Core session lifecycle on the real stack with an injected clock
 * (protocol.md §Cloud IoT Core tokens, §Cloud IoT Core config): the session ends at exp + the 600 s skew, not at the native tolerance; a config
 * stored through the API while the device is subscribed reaches it at once, and its PUBACK is that
 * version's deviceAckTime; an imported blocked device is refused (5); RSA keys enter only for bound devices.
 */
import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connackFor } from '../broker/helpers/raw-mqtt.ts';
import { waitFor } from '../broker/helpers/broker-fixture.ts';
import { startStack, type Stack } from '../sdk/helpers/stack.ts';

const PROJECT = 'acme-iot';
const path = (device: string) => `projects/${PROJECT}/locations/us-central1/registries/fleet-a/devices/${device}`;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = (k: typeof rsa) => k.publicKey.export({ type: 'spki', format: 'pem' }) as string;

let stack: Stack;
let admin: Awaited<ReturnType<Stack['startHttp']>>['admin'];
let now = Date.UTC(2026, 10, 30, 12, 0, 0);
const clockS = () => Math.floor(now / 1000);

beforeAll(async () => {
  stack = await startStack({ gcpProjects: [PROJECT], authFailureLimit: 0, clockTolerance: 300 }, () => now);
  ({ admin } = await stack.startHttp());
  const device = (id: string, numId: string, key: typeof rsa, format: string, extra: object = {}) => ({
    id,
    name: `projects/${PROJECT}/locations/us-central1/registries/fleet-a/devices/${numId}`,
    credentials: [{ publicKey: { format, key: spki(key) }, expirationTime: '1970-01-01T00:00:00Z' }],
    config: { version: '7', binaryData: Buffer.from('v7').toString('base64') },
    ...extra,
  });
  const r = await admin('POST', '/v1/import/gcp', [
    device('thermo-1', '1001', rsa, 'RSA_PEM'),
    device('lock-blocked', '1002', ec, 'ES256_PEM', { blocked: true }),
  ]);
  expect(r.status).toBe(200);
});

afterAll(async () => {
  await stack?.close();
});

const token = (lifetimeS: number) => jwt.sign({ iat: clockS(), exp: clockS() + lifetimeS, aud: PROJECT }, rsa.privateKey, { algorithm: 'RS256' });

describe('a Cloud IoT Core session', () => {
  it('ends at exp + 600 s, not at exp + the native tolerance', async () => {
    const c = await mqtt.connectAsync(stack.brokerUrl, { clientId: path('thermo-1'), username: 'unused', password: token(1200), reconnectPeriod: 0 });
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    now += (1200 + 300 + 10) * 1000; // past exp + the native 300 s
    await new Promise((r) => setTimeout(r, 600)); // two of the broker's 250 ms sweeps
    expect(c.connected).toBe(true);
    now += 300 * 1000; // past exp + 600 s
    await closed;
    expect(stack.broker.sessionCount).toBe(0);
  });

  it('gets a config stored through the API at once, as raw bytes; its PUBACK sets that version’s deviceAckTime', async () => {
    const c = await mqtt.connectAsync(stack.brokerUrl, { clientId: path('1001'), username: 'unused', password: token(600), reconnectPeriod: 0 });
    const got: Buffer[] = [];
    c.on('message', (topic, payload) => topic === '/devices/thermo-1/config' && got.push(payload));
    await c.subscribeAsync('/devices/thermo-1/config', { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]?.toString()).toBe('v7');
    await waitFor(async () => (await stack.registry.devices.get('thermo-1')).config.deviceAckTime === now);
    now += 5_000;
    const put = await admin('PUT', '/v1/devices/thermo-1/config', { config: { setpoint: 21 } });
    expect(put.body.version).toBe(8);
    await waitFor(() => got.length === 2);
    expect(got[1]?.toString()).toBe('{"setpoint":21}');
    await waitFor(async () => (await stack.registry.devices.get('thermo-1')).config.deviceAckTime === now);
    expect((await stack.registry.devices.get('thermo-1')).config.version).toBe(8);
    // binaryData: the bytes as they are
    const bytes = Buffer.from([0, 0xff, 0x10, 0x80]);
    expect((await admin('PUT', '/v1/devices/thermo-1/config', { binaryData: bytes.toString('base64url'), ifVersion: 8 })).body.version).toBe(9);
    await waitFor(() => got.length === 3);
    expect(got[2]).toEqual(bytes);
    expect(await stack.registry.gcp.config('thermo-1')).toEqual({ version: 9, data: bytes });
    await stack.device('native-cfg');
    expect((await admin('PUT', '/v1/devices/native-cfg/config', { binaryData: 'AAEC' })).body.code).toBe('validation_failed');
    expect((await admin('PUT', '/v1/devices/thermo-1/config', { binaryData: 'AAEC', config: {} })).body.code).toBe('validation_failed');
    await c.endAsync();
  });

  it('one connection per device: connecting by numId takes over from the session by id', async () => {
    const first = await mqtt.connectAsync(stack.brokerUrl, { clientId: path('thermo-1'), username: 'unused', password: token(600), reconnectPeriod: 0 });
    const closed = new Promise<void>((r) => first.once('close', () => r()));
    const second = await mqtt.connectAsync(stack.brokerUrl, { clientId: path('1001'), username: 'unused', password: token(600), reconnectPeriod: 0 });
    await closed;
    expect(second.connected).toBe(true);
    await waitFor(() => stack.broker.sessionCount === 1);
    await second.endAsync();
  });

  it('an imported blocked device is refused with 5 (principal_blocked)', async () => {
    const t = jwt.sign({ iat: clockS(), exp: clockS() + 600, aud: PROJECT }, ec.privateKey, { algorithm: 'ES256' });
    expect(await connackFor(stack.port, { clientId: path('lock-blocked'), username: 'unused', password: t })).toBe(5);
  });

  it('compatibility mode off: a path client id is an invalid client id (2)', async () => {
    const off = await startStack({ authFailureLimit: 0 }, () => now);
    try {
      expect(await connackFor(off.port, { clientId: path('thermo-1'), username: 'unused', password: token(600) })).toBe(2);
    } finally {
      await off.close();
    }
  });
});

describe('RSA keys through the API', () => {
  it('are refused for a new device and for a native device, accepted for a device with a Cloud IoT Core binding', async () => {
    const another = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect((await admin('POST', '/v1/devices', { id: 'native-rsa', publicKey: spki(another) })).body.code).toBe('unsupported_key_type');
    await stack.device('native-1');
    expect((await admin('POST', '/v1/devices/native-1/credentials', { publicKey: spki(another) })).body.code).toBe('unsupported_key_type');
    const added = await admin('POST', '/v1/devices/thermo-1/credentials', { publicKey: spki(another) });
    expect(added.status).toBe(201);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect((await admin('POST', '/v1/devices/thermo-1/credentials', { publicKey: spki(small) })).body.code).toBe('key_too_small');
  });
});

describe('the verified-token cache (issue 12)', () => {
  it('never answers a Cloud IoT Core token: each connect with the same token is verified in full', async () => {
    const t = token(600);
    for (let i = 0; i < 3; i++) {
      const c = await mqtt.connectAsync(stack.brokerUrl, { clientId: path('thermo-1'), username: 'unused', password: t, reconnectPeriod: 0 });
      await c.endAsync();
    }
    const text = await stack.metricsText();
    expect(text).toMatch(/^latchkey_broker_verified_token_cache_hits_total 0$/m);
  });
});
