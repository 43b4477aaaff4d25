import { sign as cryptoSign } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DeviceClient,
  RegistryKeySource,
  ReplayWindow,
  ServiceClient,
  isDeviceMessageError,
  signDeviceMessage,
  verifyDeviceMessage,
  type DeviceKeyRecord,
  type DeviceKeySource,
} from '@latchkey/device-sdk';
import { closeAll, startStack, waitFor, type Stack, type TestIdentity } from './helpers/stack.ts';

/**
 * protocol.md §Signed messages end to end over a real broker: devices sign with the SDK, a consumer
 * service account verifies with verifyDeviceMessage, and a tampering service account (what a
 * compromised broker or bridge can do) re-publishes altered copies, each of which must be refused.
 */

let stack: Stack;
const closers: (() => Promise<unknown>)[] = [];
let a: TestIdentity;
let b: TestIdentity;
/** every message the consumer received, in arrival order */
let inbox: { topic: string; payload: Buffer }[];
let consumer: ServiceClient;
let keyHistory: Record<string, DeviceKeyRecord[]>;

/** The key histories as the registry would answer them (protocol.md §Signed messages, Keys). */
const keys: DeviceKeySource = { keysOf: async (id) => keyHistory[id] ?? null };
const record = (ident: TestIdentity, kid: string, extra: Partial<DeviceKeyRecord> = {}): DeviceKeyRecord => ({
  kid,
  publicKey: ident.publicKeyPem,
  createdAt: null,
  removedAt: null,
  expiresAt: null,
  ...extra,
});

beforeEach(async () => {
  stack = await startStack();
  a = await stack.device('thermo-a');
  b = await stack.device('thermo-b');
  const kidOf = async (id: string) => (await stack.registry.devices.get(id)).credentials[0]!.kid;
  keyHistory = { 'thermo-a': [record(a, await kidOf('thermo-a'))], 'thermo-b': [record(b, await kidOf('thermo-b'))] };
  const c = await stack.service('consumer', { publish: [], subscribe: ['devices/+/telemetry/#', 'devices/+/state', 'devices/+/replies/+'] });
  consumer = await ServiceClient.connect({ serviceName: 'consumer', brokerUrl: stack.brokerUrl, privateKey: c.privateKey });
  closers.push(() => consumer.close());
  inbox = [];
  for (const filter of ['devices/+/telemetry/#', 'devices/+/state', 'devices/+/replies/+']) {
    await consumer.subscribe(filter, (topic, payload) => void inbox.push({ topic, payload }));
  }
});

afterEach(async () => {
  await closeAll(closers);
  await stack.close();
});

const connectDevice = async (ident: TestIdentity, extra: Partial<Parameters<typeof DeviceClient.connect>[0]> = {}) => {
  const client = await DeviceClient.connect({ deviceId: ident.id, brokerUrl: stack.brokerUrl, privateKey: ident.privateKey, ...extra });
  closers.push(() => client.close());
  return client;
};

/** Verifies the inbox in arrival order with one replay window; each entry's code, or 'ok'. */
async function verdicts(replay = new ReplayWindow()): Promise<string[]> {
  const out: string[] = [];
  for (const m of inbox) {
    try {
      await verifyDeviceMessage(m.topic, m.payload, { keys, replay });
      out.push('ok');
    } catch (e) {
      out.push(isDeviceMessageError(e) ? e.code : `foreign:${String(e)}`);
    }
  }
  return out;
}

describe('DeviceClient signs: publishTelemetry, reportState and command replies with { signed: true }', () => {
  it('publishes compact JWS payloads that verify, carrying the exact bytes, with consecutive sequence numbers from the clock in µs', async () => {
    const start = Math.floor(Date.now() / 1000) * 1000 + 123;
    let now = start;
    const device = await connectDevice(a, { clock: () => now });
    await device.onCommand('ping', () => ({ pong: true }), { signed: true });
    await device.publishTelemetry({ celsius: 21.5 }, { signed: true });
    now += 5;
    await device.publishTelemetry('raw text', { signed: true, subtopic: 'hall' });
    await device.reportState({ mode: 'heat' }, { signed: true });
    const svc = await ServiceClient.connect({ serviceName: 'cmd', brokerUrl: stack.brokerUrl, privateKey: (await stack.service('cmd', { publish: ['devices/+/commands/#'], subscribe: [] })).privateKey });
    closers.push(() => svc.close());
    await svc.publish('devices/thermo-a/commands/ping', { id: 'c-1', params: {} });
    await waitFor(() => inbox.length === 4);
    const replay = new ReplayWindow();
    const verified: Awaited<ReturnType<typeof verifyDeviceMessage>>[] = [];
    for (const m of inbox) verified.push(await verifyDeviceMessage(m.topic, m.payload, { keys, replay, clock: () => now }));
    expect(verified.map((v) => [v.topic, v.payload.toString()])).toEqual([
      ['devices/thermo-a/telemetry', '{"celsius":21.5}'],
      ['devices/thermo-a/telemetry/hall', 'raw text'],
      ['devices/thermo-a/state', '{"mode":"heat"}'],
      ['devices/thermo-a/replies/c-1', '{"ok":true,"result":{"pong":true}}'],
    ]);
    expect(verified.map((v) => v.seq)).toEqual([0, 1, 2, 3].map((i) => start * 1000 + i));
    expect(verified.every((v) => v.deviceId === 'thermo-a' && v.kid === keyHistory['thermo-a']![0]!.kid)).toBe(true);
    expect(verified[0]!.iat).toBe((start - 123) / 1000);
  });

  it('a restarted device continues above every sequence number it used', async () => {
    const first = await connectDevice(a);
    for (let i = 0; i < 50; i++) await first.publishTelemetry({ i }, { signed: true });
    await first.close();
    const second = await connectDevice(a);
    await second.publishTelemetry({ i: 50 }, { signed: true });
    await waitFor(() => inbox.length === 51);
    expect(await verdicts()).toEqual(Array(51).fill('ok'));
  });

  it('signMessages signs everything by default; signed: false opts one message out', async () => {
    const device = await connectDevice(a, { signMessages: true });
    await device.publishTelemetry({ n: 1 });
    await device.reportState({ s: 1 });
    await device.publishTelemetry({ n: 2 }, { signed: false });
    await waitFor(() => inbox.length === 3);
    expect(inbox[2]!.payload.toString()).toBe('{"n":2}');
    expect(await verdicts()).toEqual(['ok', 'ok', 'message_malformed']);
  });

  it('leaves in publish order even when a secure element signs out of order', async () => {
    let calls = 0;
    const slowSigner = async (data: Uint8Array) => {
      const delay = [30, 0, 15, 5][calls++ % 4]!;
      await new Promise((r) => setTimeout(r, delay));
      return new Uint8Array(cryptoSign('sha256', data, { key: a.privateKey, dsaEncoding: 'ieee-p1363' }));
    };
    const device = await connectDevice(a, { privateKey: undefined, sign: slowSigner });
    await Promise.all(Array.from({ length: 12 }, (_, i) => device.publishTelemetry({ i }, { signed: true })));
    await waitFor(() => inbox.length === 12);
    const replay = new ReplayWindow();
    const got: Awaited<ReturnType<typeof verifyDeviceMessage>>[] = [];
    for (const m of inbox) got.push(await verifyDeviceMessage(m.topic, m.payload, { keys, replay }));
    expect(got.map((m) => JSON.parse(m.payload.toString()).i)).toEqual([...Array(12).keys()]);
    expect(got.map((m) => m.seq - got[0]!.seq)).toEqual([...Array(12).keys()]);
  });

  it('a signer that fails rejects that publish with signing_failed', async () => {
    let fail = false;
    const signer = async (data: Uint8Array) => {
      if (fail) throw new Error('secure element unplugged');
      return new Uint8Array(cryptoSign('sha256', data, { key: a.privateKey, dsaEncoding: 'ieee-p1363' }));
    };
    const device = await connectDevice(a, { privateKey: undefined, sign: signer });
    fail = true;
    await expect(device.publishTelemetry({ x: 1 }, { signed: true })).rejects.toMatchObject({ code: 'signing_failed' });
    fail = false;
    await device.publishTelemetry({ x: 2 }, { signed: true });
    await waitFor(() => inbox.length === 1);
    expect(await verdicts()).toEqual(['ok']);
  });

  it('refuses a non-boolean signed option (caller misuse)', async () => {
    const device = await connectDevice(a);
    expect(() => device.publishTelemetry({}, { signed: 'yes' as never })).toThrow(TypeError);
    await expect(DeviceClient.connect({ deviceId: 'thermo-a', brokerUrl: stack.brokerUrl, privateKey: a.privateKey, signMessages: 1 as never })).rejects.toThrow(TypeError);
  });
});

describe('verifyDeviceMessage refuses what a tampering service account re-publishes (over the broker)', () => {
  let tamperer: ServiceClient;
  beforeEach(async () => {
    const t = await stack.service('tamperer', { publish: ['devices/+/telemetry/#', 'devices/+/state'], subscribe: [] });
    tamperer = await ServiceClient.connect({ serviceName: 'tamperer', brokerUrl: stack.brokerUrl, privateKey: t.privateKey });
    closers.push(() => tamperer.close());
  });

  /** The original, then the tamperer's copy; the verdicts of both in arrival order. */
  async function tamper(alter: (jws: string, topic: string) => Promise<{ topic: string; payload: string | Buffer }>): Promise<string[]> {
    const device = await connectDevice(a);
    await device.publishTelemetry({ celsius: 21.5 }, { signed: true });
    await waitFor(() => inbox.length === 1);
    const original = inbox[0]!;
    const copy = await alter(original.payload.toString('latin1'), original.topic);
    await tamperer.publish(copy.topic, copy.payload);
    await waitFor(() => inbox.length === 2);
    return verdicts();
  }

  const claimsOf = (jws: string) => JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const withClaims = (jws: string, claims: object) => {
    const [h, , s] = jws.split('.');
    return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
  };

  it('a changed payload: signature_invalid', async () => {
    const body = Buffer.from('{"celsius":35}').toString('base64url');
    expect(await tamper(async (jws, topic) => ({ topic, payload: withClaims(jws, { ...claimsOf(jws), body }) }))).toEqual(['ok', 'signature_invalid']);
  });

  it('a topic swap within the device: topic_mismatch; to another device: signature_invalid', async () => {
    expect(await tamper(async (jws) => ({ topic: 'devices/thermo-a/telemetry/boiler', payload: jws }))).toEqual(['ok', 'topic_mismatch']);
    inbox.length = 0;
    expect(await tamper(async (jws) => ({ topic: 'devices/thermo-b/telemetry', payload: jws }))).toEqual(['ok', 'signature_invalid']);
  });

  it('a replay of the exact bytes: message_replayed', async () => {
    expect(await tamper(async (jws, topic) => ({ topic, payload: jws }))).toEqual(['ok', 'message_replayed']);
  });

  it("another device's key: signature_invalid, or unknown_credential when the message names that key", async () => {
    const forge = (kid?: string) =>
      tamper(async (_jws, topic) => ({
        topic,
        payload: await signDeviceMessage({ deviceId: 'thermo-a', topic, payload: { celsius: 35 }, seq: 2 ** 52, privateKey: b.privateKey, ...(kid === undefined ? {} : { kid }) }),
      }));
    expect(await forge()).toEqual(['ok', 'signature_invalid']);
    inbox.length = 0;
    expect(await forge(keyHistory['thermo-b']![0]!.kid)).toEqual(['ok', 'unknown_credential']);
  });

  it('a message signed after its key was removed: credential_removed (one dated before still verifies)', async () => {
    const removedAt = Date.now() - 60_000;
    const verdict = await tamper(async (_jws, topic) => ({
      topic,
      payload: await signDeviceMessage({ deviceId: 'thermo-a', topic, payload: { celsius: 35 }, seq: 2 ** 52, privateKey: a.privateKey }),
    }));
    expect(verdict).toEqual(['ok', 'ok']);
    keyHistory['thermo-a'] = [{ ...keyHistory['thermo-a']![0]!, removedAt }];
    expect(await verdicts()).toEqual(['credential_removed', 'credential_removed']);
    const backdated = await signDeviceMessage({ deviceId: 'thermo-a', topic: 'devices/thermo-a/telemetry', payload: {}, seq: 1, privateKey: a.privateKey, clock: () => removedAt - 5_000 });
    await expect(verifyDeviceMessage('devices/thermo-a/telemetry', backdated, { keys, replay: null })).resolves.toMatchObject({ seq: 1 });
  });

  it('an unsigned message on a signed topic: message_malformed', async () => {
    expect(await tamper(async (_jws, topic) => ({ topic, payload: '{"celsius":35}' }))).toEqual(['ok', 'message_malformed']);
  });

  it('follows rotation: a message under a key added after the history was cached verifies after one refresh', async () => {
    const fresh = await stack.device('thermo-c');
    let cached: DeviceKeyRecord[] | null = null;
    let refreshes = 0;
    const cachingKeys: DeviceKeySource = {
      keysOf: async (id, o) => {
        if (o?.fetchedSince !== undefined) refreshes++;
        if (cached === null || o?.fetchedSince !== undefined) cached = [record(fresh, 'k-1'), ...(refreshes > 0 ? [record(a, 'k-2')] : [])];
        return id === 'thermo-c' ? cached : null;
      },
    };
    const oldKey = await signDeviceMessage({ deviceId: 'thermo-c', topic: 'devices/thermo-c/telemetry', payload: {}, seq: 1, privateKey: fresh.privateKey });
    const newKey = await signDeviceMessage({ deviceId: 'thermo-c', topic: 'devices/thermo-c/telemetry', payload: {}, seq: 2, privateKey: a.privateKey, kid: 'k-2' });
    const replay = new ReplayWindow();
    await verifyDeviceMessage('devices/thermo-c/telemetry', oldKey, { keys: cachingKeys, replay });
    expect(refreshes).toBe(0);
    expect((await verifyDeviceMessage('devices/thermo-c/telemetry', newKey, { keys: cachingKeys, replay })).kid).toBe('k-2');
    expect(refreshes).toBe(1);
  });
});

describe('ServiceClient.verifyDeviceMessage: key histories from the registry API, as the service account', () => {
  it('verifies with keys fetched with its own API token, and follows a rotation at once', async () => {
    const { url, admin } = await stack.startHttp();
    const reader = await stack.service('reader', { publish: [], subscribe: ['devices/+/telemetry/#'] });
    const svc = await ServiceClient.connect({ serviceName: 'reader', brokerUrl: stack.brokerUrl, privateKey: reader.privateKey, provisioningUrl: url });
    closers.push(() => svc.close());
    const got: { topic: string; payload: Buffer }[] = [];
    await svc.subscribe('devices/+/telemetry/#', (topic, payload) => void got.push({ topic, payload }));

    const before = await connectDevice(a);
    await before.publishTelemetry({ n: 1 }, { signed: true });
    await waitFor(() => got.length === 1);
    expect((await svc.verifyDeviceMessage(got[0]!.topic, got[0]!.payload)).payload.toString()).toBe('{"n":1}');

    // rotate: a new key, named by kid; the consumer's cached history does not know it yet
    const next = await stack.device('spare-key-holder'); // a fresh key pair registered elsewhere would be key_in_use: delete it first
    await admin('DELETE', '/v1/devices/spare-key-holder');
    const added = await admin('POST', '/v1/devices/thermo-a/credentials', { publicKey: next.publicKeyPem });
    expect(added.status).toBe(201);
    await before.close();
    const after = await connectDevice({ ...a, privateKey: next.privateKey }, { kid: added.body.kid });
    await after.publishTelemetry({ n: 2 }, { signed: true });
    await waitFor(() => got.length === 2);
    const m = await svc.verifyDeviceMessage(got[1]!.topic, got[1]!.payload);
    expect([m.kid, m.payload.toString()]).toEqual([added.body.kid, '{"n":2}']);
    await expect(svc.verifyDeviceMessage(got[1]!.topic, got[1]!.payload)).rejects.toMatchObject({ code: 'message_replayed' });
  });

  it('refuses a message signed after its key was removed, from the registry’s key history; one signed before still verifies', async () => {
    const { url, admin } = await stack.startHttp();
    const reader = await stack.service('history-reader', { publish: [], subscribe: ['devices/+/telemetry/#'] });
    const leak = await stack.service('leak', { publish: ['devices/+/telemetry/#'], subscribe: [] });
    const leaker = await ServiceClient.connect({ serviceName: 'leak', brokerUrl: stack.brokerUrl, privateKey: leak.privateKey });
    closers.push(() => leaker.close());
    // a history is fetched for every message (maxAgeMs 0), so the removal is seen at once
    const registryKeys = new RegistryKeySource({ provisioningUrl: url, serviceName: 'history-reader', privateKey: reader.privateKey, maxAgeMs: 0, minRefreshMs: 0 });

    const device = await connectDevice(a);
    await device.publishTelemetry({ n: 1 }, { signed: true });
    await waitFor(() => inbox.length === 1);
    // the device rotates: a second key, then the first is removed (force: it verified a connect moments ago)
    const next = await stack.device('spare-key-holder-2');
    await admin('DELETE', '/v1/devices/spare-key-holder-2');
    expect((await admin('POST', '/v1/devices/thermo-a/credentials', { publicKey: next.publicKeyPem })).status).toBe(201);
    const oldKid = keyHistory['thermo-a']![0]!.kid;
    expect((await admin('DELETE', `/v1/devices/thermo-a/credentials/${oldKid}?force=true`)).status).toBe(204);
    // whoever holds the old key keeps signing with it: a message dated after the removal
    const topic = 'devices/thermo-a/telemetry';
    const clock = () => Date.now() + 2000;
    await leaker.publish(topic, await signDeviceMessage({ deviceId: 'thermo-a', topic, payload: { n: 2 }, seq: 2 ** 52, privateKey: a.privateKey, clock }));
    await waitFor(() => inbox.length === 2);

    const replay = new ReplayWindow();
    expect((await verifyDeviceMessage(inbox[0]!.topic, inbox[0]!.payload, { keys: registryKeys, replay })).kid).toBe(oldKid);
    await expect(verifyDeviceMessage(inbox[1]!.topic, inbox[1]!.payload, { keys: registryKeys, replay })).rejects.toMatchObject({ code: 'credential_removed' });
    const history = (await admin('GET', '/v1/devices/thermo-a/keys')).body.keys as { kid: string; removedAt: number | null }[];
    expect(history.find((k) => k.kid === oldKid)?.removedAt).toEqual(expect.any(Number));
  });

  it('needs provisioningUrl', async () => {
    expect(() => consumer.verifyDeviceMessage('devices/thermo-a/telemetry', 'x')).toThrow(TypeError);
  });
});
