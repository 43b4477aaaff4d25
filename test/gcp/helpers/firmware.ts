/**
 * Cloud IoT Core firmware written with tools latchkey never ships, behind one interface so a test
 * runs the same scenario on both stacks of Google's samples:
 * - `paho+pyjwt`: test/gcp/firmware/cloudiot_device.py, paho-mqtt 1.x and PyJWT from Debian's packages
 *   (Google's Python sample, cloudiot_mqtt_example.py), run by /usr/bin/python3;
 * - `mqtt+jsonwebtoken`: mqtt.js and jsonwebtoken from npm, as Google's Node sample
 *   (cloudiot_mqtt_example_nodejs.js) connected: `jwt.sign({iat, exp, aud}, key, {algorithm})`,
 *   username `unused`, `protocol: 'mqtts'`, `secureProtocol: 'TLSv1_2_method'`, `ca: [serverCert]`.
 * Both connect over TLS. The harness turns automatic reconnects off (mqtt.js `reconnectPeriod: 0`,
 * paho disconnects on a refused CONNACK) so a test sees each CONNACK once.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import jwt from 'jsonwebtoken';
import mqtt from 'mqtt';

export type FirmwareStack = 'paho+pyjwt' | 'mqtt+jsonwebtoken';

export interface FirmwareOptions {
  host: string;
  port: number;
  /** the CA the firmware trusts (the broker's certificate here) */
  caPem: string;
  project: string;
  location: string;
  registry: string;
  /** what the client id ends in: the device id or its numId */
  device: string;
  privateKeyPem: string;
  algorithm: 'RS256' | 'ES256';
  /** exp − iat, seconds; the samples used 20 minutes */
  jwtLifetimeS?: number;
}

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  qos: number;
}

export interface FirmwareDevice {
  readonly stack: FirmwareStack;
  /** resolves with the CONNACK return code (0 accepted) */
  connect(): Promise<number>;
  /** resolves once published (QoS 1: once PUBACKed) */
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>;
  /** resolves with the granted QoS (128 refused) */
  subscribe(topic: string, qos: 0 | 1): Promise<number>;
  unsubscribe(topic: string): Promise<void>;
  /** every message received so far */
  readonly messages: readonly ReceivedMessage[];
  /** the next message (from now, or already received after `since`) matching `topic` */
  nextMessage(topic: string, timeoutMs?: number, since?: number): Promise<ReceivedMessage>;
  /** resolves when the broker or the firmware ended the connection */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/** Python with Debian's paho-mqtt and PyJWT: null when present, else what is missing. */
export function missingPythonStack(): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt, jwt, cryptography; assert paho.mqtt.__version__.startswith("1.")'], { stdio: 'pipe' });
  return r.status === 0 ? null : 'python3-paho-mqtt (1.x), python3-jwt and python3-cryptography (apt-get install python3-paho-mqtt python3-jwt)';
}

export const PYTHON_DEVICE = new URL('../firmware/cloudiot_device.py', import.meta.url).pathname;

/** The waiting side both stacks share: message log and waiters. */
class Inbox {
  readonly messages: ReceivedMessage[] = [];
  #waiters: { topic: string; from: number; resolve: (m: ReceivedMessage) => void }[] = [];
  push(m: ReceivedMessage): void {
    this.messages.push(m);
    const i = this.messages.length - 1;
    this.#waiters = this.#waiters.filter((w) => {
      if (i < w.from || w.topic !== m.topic) return true;
      w.resolve(m);
      return false;
    });
  }
  next(topic: string, timeoutMs: number, since: number): Promise<ReceivedMessage> {
    const found = this.messages.slice(since).find((m) => m.topic === topic);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message on ${topic} within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ topic, from: since, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }
}

/** Google's Python sample on paho-mqtt 1.x + PyJWT, in a child process. */
export function pythonFirmware(o: FirmwareOptions): FirmwareDevice {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-py-device-'));
  writeFileSync(path.join(dir, 'key.pem'), o.privateKeyPem, { mode: 0o600 });
  writeFileSync(path.join(dir, 'ca.pem'), o.caPem);
  const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [
    PYTHON_DEVICE, '--host', o.host, '--port', String(o.port), '--ca-certs', path.join(dir, 'ca.pem'),
    '--project-id', o.project, '--cloud-region', o.location, '--registry-id', o.registry, '--device-id', o.device,
    '--private-key-file', path.join(dir, 'key.pem'), '--algorithm', o.algorithm, '--jwt-lifetime', String(o.jwtLifetimeS ?? 1200),
  ]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const inbox = new Inbox();
  const listeners: ((e: Record<string, unknown>) => void)[] = [];
  const once = <T>(pred: (e: Record<string, unknown>) => T | undefined, what: string, timeoutMs = 15_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`python device: no ${what} within ${timeoutMs} ms${stderr ? `; stderr: ${stderr.slice(-500)}` : ''}`)), timeoutMs);
      const l = (e: Record<string, unknown>) => {
        const v = pred(e);
        if (v === undefined) return;
        clearTimeout(timer);
        listeners.splice(listeners.indexOf(l), 1);
        resolve(v);
      };
      listeners.push(l);
    });
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e.event === 'message') inbox.push({ topic: e.topic as string, payload: Buffer.from(e.payload as string, 'base64'), qos: e.qos as number });
    if (e.event === 'disconnect' || e.event === 'closed') resolveClosed();
    for (const l of [...listeners]) l(e);
  });
  child.on('exit', () => {
    resolveClosed();
    rmSync(dir, { recursive: true, force: true });
  });
  const send = (cmd: object) => child.stdin.write(`${JSON.stringify(cmd)}\n`);
  return {
    stack: 'paho+pyjwt',
    async connect() {
      const rc = once((e) => (e.event === 'connack' ? (e.rc as number) : undefined), 'CONNACK');
      send({ op: 'connect' });
      return rc;
    },
    async publish(topic, payload, qos) {
      const published = once((e) => (e.event === 'published' ? (e.mid as number) : undefined), 'publish');
      send({ op: 'publish', topic, payload: payload.toString('base64'), qos });
      const mid = await published;
      if (qos === 1) await once((e) => (e.event === 'puback' && e.mid === mid ? true : undefined), 'PUBACK');
    },
    async subscribe(topic, qos) {
      const granted = once((e) => (e.event === 'suback' ? (e.granted as number[])[0] : undefined), 'SUBACK');
      send({ op: 'subscribe', topic, qos });
      return granted;
    },
    async unsubscribe(topic) {
      send({ op: 'unsubscribe', topic });
    },
    messages: inbox.messages,
    nextMessage: (topic, timeoutMs = 15_000, since = inbox.messages.length) => inbox.next(topic, timeoutMs, since),
    closed,
    async close() {
      if (child.exitCode === null) {
        send({ op: 'disconnect' });
        child.stdin.end();
        await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 3000))]);
        child.kill();
      }
    },
  };
}

/** Google's Node sample on mqtt.js + jsonwebtoken, in-process. */
export function nodeFirmware(o: FirmwareOptions): FirmwareDevice {
  const inbox = new Inbox();
  const now = Math.floor(Date.now() / 1000);
  // the sample's createJwt: {iat, exp, aud} signed with the device's private key, no sub
  const password = jwt.sign({ iat: now, exp: now + (o.jwtLifetimeS ?? 1200), aud: o.project }, o.privateKeyPem, { algorithm: o.algorithm });
  let client: mqtt.MqttClient | null = null;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const need = () => {
    if (client === null) throw new Error('not connected');
    return client;
  };
  return {
    stack: 'mqtt+jsonwebtoken',
    connect() {
      return new Promise((resolve) => {
        // mqtt.js hands TLS options (secureProtocol, ca) to tls.connect; its typings list only some of them
        const options: mqtt.IClientOptions & { secureProtocol: string } = {
          host: o.host,
          port: o.port,
          clientId: `projects/${o.project}/locations/${o.location}/registries/${o.registry}/devices/${o.device}`,
          username: 'unused',
          password,
          protocol: 'mqtts',
          secureProtocol: 'TLSv1_2_method',
          ca: [o.caPem],
          reconnectPeriod: 0,
        };
        const c = mqtt.connect(options);
        client = c;
        c.on('message', (topic, payload, packet) => inbox.push({ topic, payload, qos: packet.qos }));
        c.on('close', () => resolveClosed());
        c.once('connect', () => resolve(0));
        c.once('error', (err) => resolve((err as { code?: number }).code ?? -1));
      });
    },
    async publish(topic, payload, qos) {
      await need().publishAsync(topic, payload, { qos });
    },
    async subscribe(topic, qos) {
      const granted = await need().subscribeAsync(topic, { qos });
      return granted[0]?.qos ?? 128;
    },
    async unsubscribe(topic) {
      await need().unsubscribeAsync(topic);
    },
    messages: inbox.messages,
    nextMessage: (topic, timeoutMs = 15_000, since = inbox.messages.length) => inbox.next(topic, timeoutMs, since),
    closed,
    async close() {
      await client?.endAsync();
    },
  };
}

/** Either stack by name. */
export function firmware(stack: FirmwareStack, o: FirmwareOptions): FirmwareDevice {
  return stack === 'paho+pyjwt' ? pythonFirmware(o) : nodeFirmware(o);
}

/** The token a stack mints (Python: `--print-token`), for checks below the broker. */
export async function tokenOf(stack: FirmwareStack, o: Pick<FirmwareOptions, 'project' | 'privateKeyPem' | 'algorithm' | 'jwtLifetimeS'>): Promise<string> {
  if (stack === 'mqtt+jsonwebtoken') {
    const now = Math.floor(Date.now() / 1000);
    return jwt.sign({ iat: now, exp: now + (o.jwtLifetimeS ?? 1200), aud: o.project }, o.privateKeyPem, { algorithm: o.algorithm });
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-py-token-'));
  try {
    writeFileSync(path.join(dir, 'key.pem'), o.privateKeyPem, { mode: 0o600 });
    const r = spawnSync('/usr/bin/python3', [
      PYTHON_DEVICE, '--host', 'x', '--port', '1', '--ca-certs', 'x', '--project-id', o.project, '--cloud-region', 'x', '--registry-id', 'x', '--device-id', 'x',
      '--private-key-file', path.join(dir, 'key.pem'), '--algorithm', o.algorithm, '--jwt-lifetime', String(o.jwtLifetimeS ?? 1200), '--print-token',
    ], { stdio: 'pipe' });
    if (r.status !== 0) throw new Error(`python token: ${r.stderr.toString().slice(-500)}`);
    return (JSON.parse(r.stdout.toString()) as { token: string }).token;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
