/**
 * Issue 14, "Done when": a Cloud IoT Core-style device written with tools latchkey never ships
 * (Google's Python sample stack, paho-mqtt 1.x + PyJWT from Debian; its Node stack, mqtt.js +
 * jsonwebtoken) connects over TLS to a broker in compatibility mode, with RS256 and ES256 keys
 * imported from a gcloud export, and works: events and state reach a native service account, config
 * arrives on every SUBSCRIBE (its PUBACK recorded as deviceAckTime), a command from the HTTP API is
 * delivered. Then every refusal the issue lists, each with its reason in the audit log.
 */
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { connackFor } from '../broker/helpers/raw-mqtt.ts';
import { waitFor } from '../broker/helpers/broker-fixture.ts';
import { localhostServerCertificate } from '../helpers/certs.ts';
import { startStack, type Stack } from '../sdk/helpers/stack.ts';
import { firmware, missingPythonStack, type FirmwareDevice, type FirmwareStack } from './helpers/firmware.ts';

const PROJECT = 'acme-iot';
const LOCATION = 'us-central1';
const REGISTRY = 'fleet-a';
const python = missingPythonStack();
if (python !== null && process.env.CI !== 'true') console.warn(`skipped the Python stack, ${python} not installed`);

type Alg = 'RS256' | 'ES256';
interface GcpTestDevice {
  id: string;
  numId: string;
  alg: Alg;
  privateKeyPem: string;
  config: Buffer;
}

const pairOf = (alg: Alg) => (alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' }));
const pemOf = (k: KeyObject, type: 'spki' | 'pkcs8') => k.export({ type, format: 'pem' }) as string;

function makeDevice(id: string, numId: string, alg: Alg): GcpTestDevice & { publicKeyPem: string } {
  const pair = pairOf(alg);
  return { id, numId, alg, privateKeyPem: pemOf(pair.privateKey, 'pkcs8'), publicKeyPem: pemOf(pair.publicKey, 'spki'), config: Buffer.from([0, 1, 2, 0xfe, 0xff, numId.length]) };
}

/** The device as `gcloud iot devices describe --format=json` prints it. */
function gcloudJson(d: ReturnType<typeof makeDevice>, registry = REGISTRY) {
  return {
    id: d.id,
    name: `projects/${PROJECT}/locations/${LOCATION}/registries/${registry}/devices/${d.numId}`,
    numId: d.numId,
    credentials: [{ publicKey: { format: d.alg === 'RS256' ? 'RSA_PEM' : 'ES256_PEM', key: d.publicKeyPem }, expirationTime: '1970-01-01T00:00:00Z' }],
    config: { version: '4', cloudUpdateTime: '2023-07-30T09:12:44.123456Z', binaryData: d.config.toString('base64') },
  };
}

let stack: Stack;
let admin: Awaited<ReturnType<Stack['startHttp']>>['admin'];
let caPem: string;
let tlsPort: number;
let service: mqtt.MqttClient;
const serviceInbox: { topic: string; payload: Buffer }[] = [];

const devices = {
  rsa: makeDevice('thermo-rsa', '2820826361193805', 'RS256'),
  ec: makeDevice('thermo-ec', '2820826361193806', 'ES256'),
  rsaB: makeDevice('lock-rsa', '2820826361193807', 'RS256'),
};

beforeAll(async () => {
  const tls = localhostServerCertificate();
  caPem = tls.certPem;
  stack = await startStack({ mqttsPort: 0, tlsCert: tls.certPem, tlsKey: tls.keyPem, gcpProjects: [PROJECT], authFailureLimit: 0 });
  tlsPort = stack.broker.addresses.mqtts?.port as number;
  ({ admin } = await stack.startHttp());
  const imported = await admin('POST', '/v1/import/gcp', Object.values(devices).map((d) => gcloudJson(d)));
  expect(imported).toEqual({ status: 200, body: { imported: 3, unchanged: 0, refused: [], dryRun: false } });
  // a native service account: sees Cloud IoT Core devices' events and state as native telemetry and state
  const svc = await stack.service('dashboard', { publish: [], subscribe: ['devices/+/telemetry/#', 'devices/+/state'] });
  const { token } = await mintConnectToken({ subject: 'svc:dashboard', privateKey: svc.privateKey, audience: 'latchkey' });
  service = await mqtt.connectAsync(stack.brokerUrl, { clientId: 'svc:dashboard', username: 'u', password: token, reconnectPeriod: 0 });
  service.on('message', (topic, payload) => serviceInbox.push({ topic, payload }));
  await service.subscribeAsync(['devices/+/telemetry/#', 'devices/+/state'], { qos: 1 });
}, 60_000);

afterAll(async () => {
  await service?.endAsync();
  await stack?.close();
});

const deviceOf = (stackName: FirmwareStack, d: GcpTestDevice, by: 'id' | 'numId'): FirmwareDevice =>
  firmware(stackName, { host: '127.0.0.1', port: tlsPort, caPem, project: PROJECT, location: LOCATION, registry: REGISTRY, device: by === 'id' ? d.id : d.numId, privateKeyPem: d.privateKeyPem, algorithm: d.alg });

describe.each<[FirmwareStack, boolean]>([
  ['paho+pyjwt', python !== null],
  ['mqtt+jsonwebtoken', false],
])('unchanged Cloud IoT Core firmware on %s, over TLS', (stackName, skip) => {
  it.skipIf(skip && process.env.CI !== 'true').each<[Alg, 'id' | 'numId']>([
    ['RS256', 'id'],
    ['ES256', 'numId'],
  ])('%s (client id by %s): connects, publishes events and state, gets config on every SUBSCRIBE, receives a command', async (alg, by) => {
    if (skip) expect(python, 'CI=true: the Python stack must be installed').toBeNull();
    const d = alg === 'RS256' ? devices.rsa : devices.ec;
    const dev = deviceOf(stackName, d, by);
    try {
      expect(await dev.connect()).toBe(0);
      const topics = { config: `/devices/${d.id}/config`, commands: `/devices/${d.id}/commands/#` };

      // config on subscribe, as raw bytes; its PUBACK is the device's config ack
      let from = dev.messages.length;
      expect(await dev.subscribe(topics.config, 1)).toBe(1);
      expect((await dev.nextMessage(topics.config, 15_000, from)).payload).toEqual(d.config);
      await waitFor(async () => (await stack.registry.devices.get(d.id)).config.deviceAckTime != null, 10_000);
      const device = await stack.registry.devices.get(d.id);
      expect(device.config.version).toBe(4);
      expect(device.gcp).toEqual({ project: PROJECT, location: LOCATION, registry: REGISTRY, numId: d.numId });
      // and again on re-subscribe
      await dev.unsubscribe(topics.config);
      from = dev.messages.length;
      expect(await dev.subscribe(topics.config, 1)).toBe(1);
      expect((await dev.nextMessage(topics.config, 15_000, from)).payload).toEqual(d.config);

      // events and state, received by a native service account on the native topics
      const seen = serviceInbox.length;
      const event = Buffer.from(`{"t":21.5,"stack":"${stackName}"}`);
      await dev.publish(`/devices/${d.id}/events/alerts`, event, 1);
      await dev.publish(`/devices/${d.id}/events`, Buffer.from('plain'), 0);
      await dev.publish(`/devices/${d.id}/state`, Buffer.from(`{"fw":"1.2.${by}"}`), 1);
      await waitFor(() => serviceInbox.length >= seen + 3, 10_000);
      const got = serviceInbox.slice(seen).map((m) => [m.topic, m.payload.toString()]);
      expect(got).toEqual(
        expect.arrayContaining([
          [`devices/${d.id}/telemetry/alerts`, event.toString()],
          [`devices/${d.id}/telemetry`, 'plain'],
          [`devices/${d.id}/state`, `{"fw":"1.2.${by}"}`],
        ]),
      );
      await waitFor(async () => JSON.stringify((await stack.registry.configState.getState(d.id))?.state) === `{"fw":"1.2.${by}"}`, 5_000);

      // a command from the HTTP API, answered once the device has PUBACKed it
      expect(await dev.subscribe(topics.commands, 1)).toBe(1);
      from = dev.messages.length;
      const sent = await admin('POST', `/v1/devices/${d.id}/commands`, { subfolder: 'fw', binaryData: Buffer.from([9, 8, 7]).toString('base64') });
      expect(sent.status).toBe(200);
      expect(sent.body).toMatchObject({ delivered: true });
      expect((await dev.nextMessage(`/devices/${d.id}/commands/fw`, 15_000, from)).payload).toEqual(Buffer.from([9, 8, 7]));
      const plain = await admin('POST', `/v1/devices/${d.id}/commands`, { data: 'reboot' });
      expect(plain.status).toBe(200);
      expect((await dev.nextMessage(`/devices/${d.id}/commands`, 15_000, from)).payload.toString()).toBe('reboot');
    } finally {
      await dev.close();
    }
    // not subscribed any more: 409 device_offline
    await waitFor(async () => !(await stack.broker.messaging.isOnline(d.id)), 5_000);
    expect((await admin('POST', `/v1/devices/${d.id}/commands`, { data: 'x' })).body.code).toBe('device_offline');
  }, 60_000);
});

describe('refusals, each with its reason in the audit log', () => {
  const clientIdOf = (d: { id: string }, o: { project?: string; location?: string; registry?: string } = {}) =>
    `projects/${o.project ?? PROJECT}/locations/${o.location ?? LOCATION}/registries/${o.registry ?? REGISTRY}/devices/${d.id}`;
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (d: GcpTestDevice, claims: object, alg: Alg = d.alg) => jwt.sign({ iat: now(), exp: now() + 1200, aud: PROJECT, ...claims }, d.privateKeyPem, { algorithm: alg });

  let address = 10;
  /**
   * The CONNACK, and the reason the broker recorded for this client id. Each attempt comes from a
   * loopback address of its own, so none is summarized into another's record (RefusalLog, perKey).
   */
  async function refusal(clientId: string, password: string): Promise<[number | 'closed', string | undefined]> {
    const from = `127.0.0.${address++}`;
    const rc = await connackFor(stack.port, { clientId, username: 'unused', password }, from);
    let reason: string | undefined;
    await waitFor(async () => {
      const entry = (await stack.registry.audit.list({ limit: 200 })).find((e) => e.action === 'auth.failure' && e.detail.remoteAddress === from && e.detail.clientId === clientId);
      reason = entry?.detail.reason as string | undefined;
      return reason !== undefined;
    }, 5_000).catch(() => undefined);
    return [rc, reason];
  }

  it('a project the broker does not serve (CONNACK 2), and a token for another project (4)', async () => {
    expect(await refusal(clientIdOf(devices.rsa, { project: 'other-proj' }), sign(devices.rsa, { aud: 'other-proj' }))).toEqual([2, 'project_not_enabled']);
    expect(await refusal(`${clientIdOf(devices.rsa)}`, sign(devices.rsa, { aud: 'other-proj' }))).toEqual([4, 'audience_mismatch']);
  });

  it('a registry or a location other than the imported one (4, after the signature)', async () => {
    expect(await refusal(clientIdOf(devices.ec, { registry: 'fleet-z' }), sign(devices.ec, {}))).toEqual([4, 'binding_mismatch']);
    expect(await refusal(clientIdOf(devices.ec, { location: 'europe-west1' }), sign(devices.ec, {}))).toEqual([4, 'binding_mismatch']);
  });

  it('a native device (no Cloud IoT Core binding) cannot use a path client id', async () => {
    const native = await stack.device('native-1');
    const token = jwt.sign({ iat: now(), exp: now() + 600, aud: PROJECT }, native.privateKey, { algorithm: 'ES256' });
    expect(await refusal(clientIdOf({ id: 'native-1' }), token)).toEqual([4, 'binding_mismatch']);
  });

  it('an RS256 token against an EC key, and ES256 against RSA', async () => {
    const rsaSigned = jwt.sign({ iat: now(), exp: now() + 600, aud: PROJECT }, devices.rsaB.privateKeyPem, { algorithm: 'RS256' });
    expect(await refusal(clientIdOf(devices.ec, { registry: REGISTRY }).replace('thermo-ec', devices.ec.numId), rsaSigned)).toEqual([4, 'alg_key_mismatch']);
    const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const ecSigned = jwt.sign({ iat: now(), exp: now() + 600, aud: PROJECT }, ecKey, { algorithm: 'ES256' });
    expect(await refusal(clientIdOf(devices.rsaB), ecSigned)).toEqual([4, 'alg_key_mismatch']);
  });

  it('HS256 signed with the public key bytes', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iat: now(), exp: now() + 600, aud: PROJECT })}`;
    const forged = `${input}.${createHmac('sha256', devices.rsa.publicKeyPem).update(input).digest('base64url')}`;
    expect(await refusal(clientIdOf(devices.rsa).replace('thermo-rsa', devices.rsa.numId), forged)).toEqual([4, 'alg_not_allowed']);
  });

  it('a lifetime over 24 h', async () => {
    const token = jwt.sign({ iat: now(), exp: now() + 86_401, aud: PROJECT }, devices.rsaB.privateKeyPem, { algorithm: 'RS256' });
    expect(await refusal(clientIdOf(devices.rsaB).replace('lock-rsa', devices.rsaB.numId), token)).toEqual([4, 'lifetime_exceeded']);
  });

  it("another device's path", async () => {
    // thermo-rsa's own, valid token on lock-rsa's path: lock-rsa's key does not verify it
    expect(await refusal(`${clientIdOf(devices.rsaB)}`, sign(devices.rsa, {}))).toEqual([4, 'signature_invalid']);
    // with its sub naming itself, on another device's path
    expect(await refusal(clientIdOf(devices.rsaB, {}).replace('lock-rsa', devices.rsaB.numId), sign(devices.rsaB, { sub: 'thermo-rsa' }))).toEqual([4, 'subject_mismatch']);
  });

  it("topics outside the device's own: SUBACK 0x80 for a subscription, the connection closed for a publish", async () => {
    const connect = () =>
      mqtt.connectAsync(stack.brokerUrl, { clientId: clientIdOf(devices.rsa), username: 'unused', password: sign(devices.rsa, {}), reconnectPeriod: 0 });
    const c = await connect();
    /** the granted QoS, or 128 (mqtt.js rejects a SUBACK 0x80) */
    const grant = async (topic: string) => c.subscribeAsync(topic, { qos: 1 }).then((g) => g[0]?.qos, () => 128);
    const topics = ['/devices/lock-rsa/config', '/devices/thermo-rsa/commands', '/devices/thermo-rsa/commands/+', 'devices/thermo-rsa/config', '/devices/thermo-rsa/config'];
    const granted: [string, number | undefined][] = [];
    for (const t of topics) granted.push([t, await grant(t)]);
    expect(Object.fromEntries(granted)).toEqual({
      '/devices/lock-rsa/config': 128,
      '/devices/thermo-rsa/commands': 128, // only the /# form, as Cloud IoT Core allowed
      '/devices/thermo-rsa/commands/+': 128,
      'devices/thermo-rsa/config': 128, // the native topics are not this session's
      '/devices/thermo-rsa/config': 1,
    });
    for (const topic of ['/devices/lock-rsa/events', '/devices/thermo-rsa/attach', 'devices/thermo-rsa/telemetry']) {
      const d = topic === '/devices/lock-rsa/events' ? c : await connect();
      const closed = new Promise<void>((r) => d.once('close', () => r()));
      d.publish(topic, 'x', { qos: 1 });
      await closed;
      d.end(true);
    }
  });

  it('RSA under 2048 bits: the import refuses the device, nothing is stored', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weak = { ...makeDevice('meter-weak', '2820826361199999', 'RS256'), publicKeyPem: pemOf(small.publicKey, 'spki') };
    const ok = makeDevice('meter-ok', '2820826361199998', 'ES256');
    const r = await admin('POST', '/v1/import/gcp', [gcloudJson(ok), gcloudJson(weak)]);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'import_rejected', refused: [{ id: 'meter-weak', code: 'key_too_small' }] });
    expect(await stack.registry.devices.exists('meter-ok')).toBe(false);
  });
});
