/**
 * The broker side of the broker benchmarks, run in its own process so its CPU time and memory
 * can be measured alone: `tsx bench/broker-child.ts <auth|bare|jose|floor> <devices.json> [broker config JSON] [services JSON]`.
 * - `auth`: latchkey's createBroker over a real SQLite registry holding the devices' public keys.
 * - `bare`: the same aedes 1.x with the same options (connect timeout, client-id length) on a
 *   plain net server, without authentication or latchkey's hooks (accepts everyone).
 * - `jose`: bare's aedes plus an `authenticate` hook doing issue 4's "straightforward jose
 *   jwtVerify" with the device's KeyObject from a Map built once at start (no SQLite).
 * - `floor`: bare's aedes plus an `authenticate` hook doing only the ES256 signature check
 *   (split at the last '.', base64url-decode, crypto.verify with the device's KeyObject from
 *   the same kind of Map; no claims, no registry): issue 4's "the signature check itself".
 * In `auth` mode the services JSON (`[{name, publicKeyPem, acl}]`) registers service accounts too
 * (the consumers of the publish benchmarks).
 * Talks to the parent over IPC: sends {port} when listening, answers {cmd:'cpu'|'mem'|'metrics'|'stop'}
 * (`metrics`: the broker's Prometheus text, `auth` mode only).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { jwtVerify } from 'jose';
import { Registry as MetricsRegistry } from 'prom-client';
import { DEFAULT_LIMITS, parsePublicKey } from '@latchkey/device-sdk/protocol';
import { openRegistry } from '../provisioning/src/registry/index.ts';
import { createBroker } from '../broker/src/index.ts';

type Request = { cmd: 'cpu' } | { cmd: 'mem' } | { cmd: 'metrics' } | { cmd: 'stop' };

const MODES = ['auth', 'bare', 'jose', 'floor'];
const [mode, devicesFile, configJson, servicesJson] = process.argv.slice(2);
if (!MODES.includes(mode as string)) throw new TypeError('usage: broker-child.ts <auth|bare|jose|floor> <devices.json>');
if (typeof process.send !== 'function') throw new TypeError('broker-child.ts must be started with an IPC channel');
const send = process.send.bind(process);

const silent = { debug() {}, info() {}, warn() {}, error() {} };
let stop: () => Promise<void>;
let port: number;
let metricsText: () => Promise<string> = async () => '';
const devices = JSON.parse(readFileSync(devicesFile as string, 'utf8')) as Array<{ id: string; publicKeyPem: string }>;

type Done = (error: AuthenticateError | null, success: boolean | null) => void;
/** aedes sends CONNACK 4 only when the error carries returnCode 4 (architecture.md §Library facts). */
const refused = () => Object.assign(new Error('bad credentials'), { returnCode: 4 }) as AuthenticateError;
const JOSE_OPTIONS = { algorithms: ['ES256'], audience: 'latchkey', requiredClaims: ['exp', 'iat', 'sub'] };

/** The baselines' key store: every device's KeyObject, built once at start. */
const keyMap = (): Map<string, KeyObject> => new Map(devices.map((d) => [d.id, createPublicKey(d.publicKeyPem)]));

/** `jose`: look the key up, `await jwtVerify(...)`, check sub === client id. */
function joseHook(keys: Map<string, KeyObject>) {
  return (client: Client, _username: unknown, password: Readonly<Buffer | undefined>, done: Done): void => {
    const key = keys.get(client.id);
    if (key === undefined || password === undefined) return done(refused(), null);
    jwtVerify(password.toString('utf8'), key, JOSE_OPTIONS)
      .then(({ payload }) => payload.sub === client.id, () => false)
      .then((ok) => done(ok ? null : refused(), ok ? true : null));
  };
}

/** `floor`: only the ES256 signature over `header.payload` (RFC 7515 §5.2), nothing else. */
function floorHook(keys: Map<string, KeyObject>) {
  return (client: Client, _username: unknown, password: Readonly<Buffer | undefined>, done: Done): void => {
    const key = keys.get(client.id);
    const dot = password === undefined ? -1 : password.lastIndexOf(0x2e);
    if (key === undefined || password === undefined || dot < 0) return done(refused(), null);
    let ok = false;
    try {
      const signature = Buffer.from(password.toString('latin1', dot + 1), 'base64url');
      ok = verify('sha256', password.subarray(0, dot), { key, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      ok = false;
    }
    done(ok ? null : refused(), ok ? true : null);
  };
}

if (mode === 'auth') {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-'));
  const registry = await openRegistry(path.join(dir, 'bench.db'), { clock: Date.now });
  for (let i = 0; i < devices.length; i += 5000) {
    await registry.devices.createMany(
      devices.slice(i, i + 5000).map((d) => ({ id: d.id, key: parsePublicKey(d.publicKeyPem) })),
      'bench',
    );
  }
  type Service = { name: string; publicKeyPem: string; acl: { publish: string[]; subscribe: string[] } };
  for (const svc of JSON.parse(servicesJson ?? '[]') as Service[]) await registry.services.create({ name: svc.name, key: parsePublicKey(svc.publicKeyPem), acl: svc.acl }, 'bench');
  const metrics = new MetricsRegistry();
  metricsText = () => metrics.metrics();
  const broker = createBroker({
    // defaults otherwise (throttling on), unless the parent overrides some
    config: { host: '127.0.0.1', mqttPort: 0, ...(configJson === undefined ? {} : (JSON.parse(configJson) as object)) },
    registry,
    log: silent,
    metrics,
  });
  await broker.listen();
  port = broker.addresses.mqtt?.port as number;
  stop = async () => {
    await broker.close();
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  };
} else {
  const authenticate = mode === 'jose' ? joseHook(keyMap()) : mode === 'floor' ? floorHook(keyMap()) : undefined;
  // the aedes options createBroker sets besides its hooks (broker/src/create-broker.ts)
  const aedes = await Aedes.createBroker({
    connectTimeout: DEFAULT_LIMITS.connectTimeout * 1000,
    maxClientsIdLength: 200,
    ...(authenticate === undefined ? {} : { authenticate }),
  });
  const server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  stop = async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    server.close();
  };
}

process.on('message', (msg: Request) => {
  if (msg.cmd === 'cpu') {
    send({ cpu: process.cpuUsage() });
  } else if (msg.cmd === 'mem') {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc !== 'function') throw new TypeError('run with --expose-gc');
    for (let i = 0; i < 3; i++) gc();
    const m = process.memoryUsage();
    send({ mem: { heapUsed: m.heapUsed, rss: m.rss, external: m.external } });
  } else if (msg.cmd === 'metrics') {
    void metricsText().then((text) => send({ metrics: text }));
  } else if (msg.cmd === 'stop') {
    void stop().then(() => process.exit(0));
  }
});
send({ port });
