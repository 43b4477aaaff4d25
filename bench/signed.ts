/**
 * Signed messages (issue 15), side by side in one run:
 * - **device**: µs per message to sign (the SDK's MessageSigner: seq, claims, base64url, ES256) beside
 *   encoding the same telemetry unsigned;
 * - **consumer**: µs per message for verifyDeviceMessage (jose's compactVerify for the signature),
 *   the protocol core's synchronous verifySignedMessage (the broker's), and crypto.verify alone;
 * - **broker**: broker CPU per QoS 1 publish of device telemetry, routed to one QoS 1 subscriber,
 *   for three latchkey brokers each in its own child process (bench/broker-child.ts, `auth` mode):
 *   `unsigned` (plain JSON), `signed, not checked` (the same telemetry as signed messages, no
 *   requirement: what the larger payload costs) and `signed, checked` (`requireSignedTopics`: the
 *   edge check's one verify per message). Target: signed-checked ≤ 2× unsigned.
 * Each round runs every broker once, the order rotated; the median round is reported. Every
 * message is distinct and signed before any broker starts. Honesty: the checking broker must close
 * the connection of a tampered message before the run, and must have counted one verification per
 * signed message it received (its own metric) after it.
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { deviceTopics, servicePrincipal, verifySignedMessage } from '@latchkey/device-sdk/protocol';
import { ReplayWindow, verifyDeviceMessage, type DeviceKeySource } from '../device-sdk/src/index.ts';
import { encodePayload } from '../device-sdk/src/messaging/encode-payload.ts';
import { MessageSigner } from '../device-sdk/src/messaging/message-signer.ts';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';
import { signerOf } from '../device-sdk/src/token/jws-signing.ts';
import { connectPacket, makeDevices, mqttPacket, startBrokerChild, type BenchDevice, type BrokerChild } from './broker-children.ts';
import type { BenchResult } from './types.ts';

const DEVICES = 20;
const PER_DEVICE = 250;
const ROUNDS = 6;
const WINDOW = 32;
const MICRO_N = 3000;
/** > the broker's 1 s status flush: each round's batched lastSeen write lands inside its CPU window */
const SETTLE_MS = 1_500;
const SIGNED_TOPICS = ['devices/+/telemetry/#'];
const MODES = ['unsigned', 'signed, not checked', 'signed, checked'] as const;
type Mode = (typeof MODES)[number];

const telemetry = (seq: number) => ({ seq, ts: 1_767_225_600_000 + seq, celsius: 21.5, humidity: 40.2, setpoint: 21, mode: 'heat' });
const topicOf = (d: BenchDevice) => deviceTopics(d.id).telemetry;

/** A QoS 1 PUBLISH with packet id `id`. */
function publishPacket(topic: string, payload: Buffer, id: number): Buffer {
  const t = Buffer.from(topic);
  return mqttPacket(0x32, Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([id >> 8, id & 0xff]), payload]));
}

/** A device connection over a raw socket (no client library in the measured path's other end). */
function openDevice(port: number, d: BenchDevice, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true });
    s.once('connect', () => s.write(connectPacket(d.id, token)));
    s.once('data', (b: Buffer) => (b[0] === 0x20 && b[3] === 0 ? resolve(s) : reject(new Error(`CONNECT refused (${b[3]})`))));
    s.once('error', reject);
  });
}

/** Sends `packets` with at most WINDOW unacknowledged; resolves when every PUBACK arrived. */
function sendAll(s: Socket, packets: readonly Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    let pending: Buffer = Buffer.alloc(0);
    const pump = () => {
      while (sent < packets.length && sent - acked < WINDOW) s.write(packets[sent++]!);
    };
    const onData = (d: Buffer) => {
      pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
      while (pending.length >= 4 && pending[0] === 0x40) {
        acked++;
        pending = pending.subarray(4);
      }
      if (acked === packets.length) {
        s.off('data', onData);
        resolve();
      } else pump();
    };
    s.on('data', onData);
    s.once('close', () => (acked < packets.length ? reject(new Error('the broker closed a device connection')) : undefined));
    pump();
  });
}

const cpuMicros = (u: NodeJS.CpuUsage) => u.user + u.system;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const WARM_UP = 500;

/**
 * Process CPU µs per call of `fn` (CPU, not wall time: the machine is shared, and jose's WebCrypto
 * verify runs on libuv's thread pool, which process CPU includes), over n sequential calls after
 * WARM_UP; indices ascend (0 … WARM_UP + n - 1: a replay window sees each message once, in order).
 */
async function perCall(n: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < WARM_UP; i++) await fn(i);
  const started = process.cpuUsage();
  for (let i = WARM_UP; i < WARM_UP + n; i++) await fn(i);
  return cpuMicros(process.cpuUsage(started)) / n;
}

async function measureEnds(d: BenchDevice): Promise<{ lines: string[]; metrics: Record<string, number> }> {
  const topic = topicOf(d);
  const signer = new MessageSigner({ deviceId: d.id, signer: signerOf(d.privateKey, undefined), kid: undefined, aud: 'latchkey:message' }, Date.now);
  const unsignedUs = await perCall(MICRO_N, (i) => encodePayload(telemetry(i)));
  const signUs = await perCall(MICRO_N, (i) => signer.sign(topic, encodePayload(telemetry(i))));
  const messages = await Promise.all(Array.from({ length: WARM_UP + MICRO_N }, (_, i) => signer.sign(topic, encodePayload(telemetry(i)))));
  const key = createPublicKey(d.publicKeyPem);
  // one history, as RegistryKeySource keeps it cached (the SDK imports each record's key once)
  const history = [{ kid: 'k', publicKey: key, createdAt: null, removedAt: null, expiresAt: null }];
  const keys: DeviceKeySource = { keysOf: async () => history };
  const replay = new ReplayWindow();
  const joseUs = await perCall(MICRO_N, (i) => verifyDeviceMessage(topic, messages[i]!, { keys, replay }));
  const creds = [{ kid: 'k', key, expiresAt: null }];
  const coreUs = await perCall(MICRO_N, (i) =>
    verifySignedMessage(messages[i]!, { topic, audience: 'latchkey', clockTolerance: 300, now: Date.now(), resolveCredentials: () => creds }),
  );
  const floorUs = await perCall(MICRO_N, (i) => {
    const m = messages[i]!;
    const dot = m.lastIndexOf(0x2e);
    return cryptoVerify('sha256', m.subarray(0, dot), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(m.toString('latin1', dot + 1), 'base64url'));
  });
  const unsignedBytes = encodePayload(telemetry(1)).length;
  const signedBytes = messages[1]!.length;
  return {
    lines: [
      `device, CPU per message: unsigned encode ${unsignedUs.toFixed(1)} µs; signed (MessageSigner: seq, claims, base64url, ES256) ${signUs.toFixed(1)} µs; payload ${unsignedBytes} → ${signedBytes} bytes`,
      `consumer, CPU per message: verifyDeviceMessage (jose compactVerify + the core's rules + replay window) ${joseUs.toFixed(1)} µs; the core's verifySignedMessage (crypto.verify, the broker's) ${coreUs.toFixed(1)} µs; crypto.verify alone ${floorUs.toFixed(1)} µs`,
    ],
    metrics: { deviceUnsignedUs: unsignedUs, deviceSignUs: signUs, unsignedBytes, signedBytes, consumerJoseUs: joseUs, consumerCoreUs: coreUs, verifyFloorUs: floorUs },
  };
}

interface Plan {
  unsigned: Buffer[][];
  signed: Buffer[][];
}

/** Every device's publishes of one round: plain and signed telemetry, distinct sequence numbers. */
async function plan(devices: readonly BenchDevice[], round: number): Promise<Plan> {
  const out: Plan = { unsigned: [], signed: [] };
  for (const d of devices) {
    const signer = new MessageSigner({ deviceId: d.id, signer: signerOf(d.privateKey, undefined), kid: undefined, aud: 'latchkey:message' }, () => Date.now() + round);
    const topic = topicOf(d);
    const bodies = Array.from({ length: PER_DEVICE }, (_, i) => encodePayload(telemetry(round * PER_DEVICE + i)));
    const signed = await Promise.all(bodies.map((b) => signer.sign(topic, b)));
    out.unsigned.push(bodies.map((b, i) => publishPacket(topic, b, i + 1)));
    out.signed.push(signed.map((b, i) => publishPacket(topic, b, i + 1)));
  }
  return out;
}

/** One round against one broker: connect, subscribe, publish everything, wait for every delivery. */
async function round(child: BrokerChild, mode: Mode, devices: readonly BenchDevice[], tokens: readonly string[], sub: { token: string }, p: Plan): Promise<number> {
  const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${child.port}`, { clientId: servicePrincipal('bench-sub'), username: 'x', password: sub.token, protocolVersion: 4, reconnectPeriod: 0, clean: true });
  let received = 0;
  subscriber.on('message', () => received++);
  await subscriber.subscribeAsync('devices/+/telemetry/#', { qos: 1 });
  const sockets = await Promise.all(devices.map((d, i) => openDevice(child.port, d, tokens[i]!)));
  const packets = mode === 'unsigned' ? p.unsigned : p.signed;
  const total = packets.reduce((n, ps) => n + ps.length, 0);
  const before = await child.request<NodeJS.CpuUsage>('cpu');
  await Promise.all(sockets.map((s, i) => sendAll(s, packets[i]!)));
  while (received < total) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const after = await child.request<NodeJS.CpuUsage>('cpu');
  for (const s of sockets) s.destroy();
  await subscriber.endAsync(true);
  return (cpuMicros(after) - cpuMicros(before)) / total;
}

/** The checking broker closes the connection of a tampered signed message. */
async function refusesTampered(child: BrokerChild, d: BenchDevice, token: string, p: Plan): Promise<boolean> {
  const s = await openDevice(child.port, d, token);
  const genuine = p.signed[0]![0]!;
  const tampered = Buffer.from(genuine);
  tampered[tampered.length - 10] = tampered[tampered.length - 10] === 0x41 ? 0x42 : 0x41; // a signature character
  const closed = new Promise<boolean>((resolve) => {
    s.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 3000);
  });
  s.write(tampered);
  return closed;
}

const verifiedCount = async (child: BrokerChild) => {
  const text = await child.request<string>('metrics');
  const m = /latchkey_broker_signed_publishes_total\{result="verified",reason="ok"\} (\d+)/.exec(text);
  return m === null ? 0 : Number(m[1]);
};

export async function benchSigned(): Promise<BenchResult> {
  const devices = makeDevices(DEVICES);
  const [service] = makeDevices(1);
  const sub = { ...service!, id: servicePrincipal('bench-sub') };
  const ends = await measureEnds(devices[0]!);
  const plans = await Promise.all(Array.from({ length: ROUNDS + 1 }, (_, r) => plan(devices, r)));
  const tokens = await Promise.all(devices.map(async (d) => (await mintConnectToken({ subject: d.id, privateKey: d.privateKey, ttlSeconds: 3600 })).token));
  const subToken = { token: (await mintConnectToken({ subject: sub.id, privateKey: sub.privateKey, ttlSeconds: 3600 })).token };
  const base = { authFailureLimit: 0 };
  const services = [{ name: 'bench-sub', publicKeyPem: sub.publicKeyPem, acl: { publish: [], subscribe: ['devices/#'] } }];
  const children = new Map<Mode, BrokerChild>();
  children.set('unsigned', await startBrokerChild('auth', devices, ['--no-memory-reducer'], base, services));
  children.set('signed, not checked', await startBrokerChild('auth', devices, ['--no-memory-reducer'], base, services));
  children.set('signed, checked', await startBrokerChild('auth', devices, ['--no-memory-reducer'], { ...base, requireSignedTopics: SIGNED_TOPICS }, services));
  const perRound = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  let checkedMessages = 0;
  try {
    const checking = children.get('signed, checked')!;
    if (!(await refusesTampered(checking, devices[0]!, tokens[0]!, plans[0]!))) throw new Error('the checking broker accepted a tampered signed message');
    for (const m of MODES) await round(children.get(m)!, m, devices, tokens, subToken, plans[0]!);
    const warmChecked = await verifiedCount(checking);
    for (let r = 1; r <= ROUNDS; r++) {
      const shift = r % MODES.length;
      for (const m of [...MODES.slice(shift), ...MODES.slice(0, shift)]) {
        perRound.get(m)!.push(await round(children.get(m)!, m, devices, tokens, subToken, plans[r]!));
        if (m === 'signed, checked') checkedMessages += DEVICES * PER_DEVICE;
      }
    }
    const verified = (await verifiedCount(checking)) - warmChecked;
    if (verified !== checkedMessages) throw new Error(`the checking broker verified ${verified} messages of ${checkedMessages}`);
  } finally {
    await Promise.all([...children.values()].map((c) => c.stop()));
  }
  const med = (m: Mode) => median(perRound.get(m)!);
  const ratio = med('signed, checked') / med('unsigned');
  const ratios = perRound.get('unsigned')!.map((u, i) => perRound.get('signed, checked')![i]! / u);
  const check = med('signed, checked') - med('signed, not checked');
  const floorRatio = (med('signed, not checked') + ends.metrics.verifyFloorUs!) / med('unsigned');
  const us = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
  const lines = [
    ...ends.lines,
    `broker, QoS 1 telemetry from ${DEVICES} devices to one QoS 1 subscriber, ${ROUNDS} rounds × ${DEVICES * PER_DEVICE} messages per broker (order rotated), ${WINDOW} in flight per device:`,
    ...MODES.map((m) => `  ${m.padEnd(20)} ${med(m).toFixed(1)} µs broker CPU per publish (median round; rounds ${us(perRound.get(m)!)})`),
    `  the edge check: ${checkedMessages} signed publishes, ${checkedMessages} verifications counted by the broker (one per message); a tampered one closed its connection`,
    `ratio signed-checked/unsigned: ${ratio.toFixed(2)}× (per round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×); target ≤ 2× ${ratio <= 2 ? 'MET' : 'NOT MET'}`,
    `ratio signed-not-checked/unsigned: ${(med('signed, not checked') / med('unsigned')).toFixed(2)}× (the larger payload alone); the check itself: ${check.toFixed(1)} µs per message = ${(check / ends.metrics.verifyFloorUs!).toFixed(2)}× crypto.verify alone`,
    `floor: unsigned + the larger payload + one crypto.verify = ${floorRatio.toFixed(2)}× unsigned (no edge check with one ES256 verify per message can cost less)`,
  ];
  return {
    name: 'signed',
    lines,
    metrics: {
      ...ends.metrics,
      unsignedUsPerPublish: med('unsigned'),
      signedUncheckedUsPerPublish: med('signed, not checked'),
      signedCheckedUsPerPublish: med('signed, checked'),
      ratio,
      floorRatio,
      checkUsPerPublish: check,
      roundRatioMin: Math.min(...ratios),
      roundRatioMax: Math.max(...ratios),
    },
  };
}
