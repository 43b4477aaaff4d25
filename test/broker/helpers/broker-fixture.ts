/**
 * A real broker on 127.0.0.1 port 0 over a real SQLite registry in a temp dir, with a clock
 * the test advances, a log that records entries, and helpers to register principals and mint
 * tokens. Every fixture is torn down by `close()`.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { Registry as MetricsRegistry } from 'prom-client';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { mintConnectToken, type MintConnectTokenOptions } from '../../../device-sdk/src/token/mint-token.ts';
import { openRegistry, type Registry } from '../../../provisioning/src/registry/index.ts';
import { testClock as registryTestClock, type TestClock } from '../../registry/registry-fixture.ts';
import { createBroker, type Broker, type BrokerConfigInput, type BrokerDeps, type BrokerLog } from '../../../broker/src/index.ts';

export type { TestClock };

/** The registry fixture's test clock, starting now (whole seconds): broker tests mint tokens against real time. */
export function testClock(start = Math.floor(Date.now() / 1000) * 1000): TestClock {
  return registryTestClock(start);
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

export function recordingLog(): BrokerLog & { entries: LogEntry[]; text(): string } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (obj: object, msg: string) => {
    entries.push({ level, obj, msg });
  };
  return {
    entries,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () => entries.map((e) => `${e.msg} ${JSON.stringify(e.obj, (_k, v) => (v instanceof Error ? v.message : v))}`).join('\n'),
  };
}

export interface TestPrincipal {
  id: string;
  privateKey: KeyObject;
  kid: string;
  token(opts?: Partial<MintConnectTokenOptions>): Promise<string>;
}

export interface BrokerFixture {
  broker: Broker;
  registry: Registry;
  clock: TestClock;
  log: ReturnType<typeof recordingLog>;
  metrics: MetricsRegistry;
  port: number;
  url: string;
  device(id: string, opts?: { blocked?: boolean }): Promise<TestPrincipal>;
  service(name: string, acl: { publish: string[]; subscribe: string[] }): Promise<TestPrincipal>;
  /** mqtt.js client, connected (rejects on refusal); closed at teardown. */
  connect(clientId: string, password: string, opts?: IClientOptions): Promise<MqttClient>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export function newKeyPair(): { privateKey: KeyObject; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

const connacks = new WeakMap<MqttClient, IConnackPacket>();

/** The CONNACK `connectClient` got for `client` (e.g. its `sessionPresent`). */
export function connackOf(client: MqttClient): IConnackPacket {
  const connack = connacks.get(client);
  if (connack === undefined) throw new Error('not a client from connectClient');
  return connack;
}

/**
 * An mqtt.js client as a device or service connects in these tests (MQTT 3.1.1, no automatic
 * reconnect); rejects on refusal, or when the connection closes first (mqtt.connectAsync, which
 * keeps the CONNACK to itself).
 */
export async function connectClient(url: string, clientId: string, password: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId, username: 'x', password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  await new Promise<void>((resolve, reject) => {
    const settle = (err: Error | null, connack?: IConnackPacket) => {
      client.off('connect', onConnect).off('error', onError).off('close', onClose);
      if (err === null) {
        connacks.set(client, connack as IConnackPacket);
        return resolve();
      }
      client.end(true);
      reject(err);
    };
    const onConnect = (connack: IConnackPacket) => settle(null, connack);
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(new Error("Couldn't connect to server"));
    client.on('connect', onConnect).on('error', onError).on('close', onClose);
  });
  client.on('error', () => undefined);
  return client;
}

/** Registers devices and services in `registry` with fresh keys, and mints their tokens against `clock`. */
export function registrar(registry: Registry, clock: TestClock): Pick<BrokerFixture, 'device' | 'service'> {
  const principal = (id: string, privateKey: KeyObject, kid: string): TestPrincipal => ({
    id,
    privateKey,
    kid,
    token: async (opts = {}) => (await mintConnectToken({ subject: id, privateKey, ttlSeconds: 3600, clock, ...opts })).token,
  });
  return {
    async device(id, opts = {}) {
      const { privateKey, pem } = newKeyPair();
      const record = await registry.devices.create({ id, key: parsePublicKey(pem) }, 'test');
      if (opts.blocked === true) await registry.devices.update(id, { blocked: true }, 'test');
      return principal(id, privateKey, record.credentials[0]?.kid as string);
    },
    async service(name, acl) {
      const { privateKey, pem } = newKeyPair();
      const record = await registry.services.create({ name, key: parsePublicKey(pem), acl }, 'test');
      return principal(`svc:${name}`, privateKey, record.credentials[0]?.kid as string);
    },
  };
}

/** `deps`: what `createBroker` takes besides config, registry, clock, log and metrics (another store or emitter). */
export async function startBroker(
  config: BrokerConfigInput = {},
  clock: TestClock = testClock(),
  deps: Pick<BrokerDeps, 'persistence' | 'mq'> = {},
): Promise<BrokerFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-broker-'));
  const registry = await openRegistry(path.join(dir, 'latchkey.db'), { clock });
  const log = recordingLog();
  const metrics = new MetricsRegistry();
  const broker = createBroker({ config: { host: '127.0.0.1', mqttPort: 0, ...config }, registry, clock, log, metrics, ...deps });
  await broker.listen();
  const port = broker.addresses.mqtt?.port as number;
  const clients: MqttClient[] = [];
  const fx: BrokerFixture = {
    broker,
    registry,
    clock,
    log,
    metrics,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    ...registrar(registry, clock),
    async connect(clientId, password, opts = {}) {
      const client = await connectClient(fx.url, clientId, password, opts);
      clients.push(client);
      return client;
    },
    async metric(name, labels = {}) {
      const m = await metrics.getSingleMetric(name)?.get();
      const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val));
      return v?.value ?? 0;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await broker.close();
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!(await predicate())) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
