/**
 * The real latchkey stack for SDK tests: a SQLite registry in a temp dir, `createBroker` on
 * 127.0.0.1 port 0 (restartable on the same port), and a counting TCP proxy to see every
 * connection attempt a client makes. Torn down by `close()`.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry as MetricsRegistry } from 'prom-client';
import { parsePublicKey, systemClock, type Clock } from '@latchkey/device-sdk/protocol';
import { openRegistry, type Registry } from '../../../provisioning/src/registry/index.ts';
import { createBroker, type Broker, type BrokerConfigInput, type BrokerLog } from '../../../broker/src/index.ts';
import { buildApp } from '../../../provisioning/src/http/app.ts';

export const quietLog: BrokerLog = { debug() {}, info() {}, warn() {}, error() {} };

export interface TestIdentity {
  id: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
}

export interface Stack {
  registry: Registry;
  broker: Broker;
  port: number;
  brokerUrl: string;
  dir: string;
  device(id: string): Promise<TestIdentity>;
  service(name: string, acl: { publish: string[]; subscribe: string[] }): Promise<TestIdentity>;
  /** Closes the broker (every session ends) and starts a new one on the same port after `downMs`. */
  restartBroker(downMs: number): Promise<void>;
  /** The provisioning HTTP API (buildApp) on port 0, wired to the broker's messaging port. */
  startHttp(): Promise<{ url: string; admin: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }> }>;
  /** The current broker's Prometheus text. */
  metricsText(): Promise<string>;
  close(): Promise<void>;
}

export function newIdentity(id: string): TestIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { id, privateKey, publicKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

export async function startStack(config: BrokerConfigInput = {}, clock: Clock = systemClock): Promise<Stack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-sdk-'));
  const registry = await openRegistry(path.join(dir, 'latchkey.db'), { clock });
  let metrics = new MetricsRegistry();
  const make = (port: number) => {
    metrics = new MetricsRegistry();
    return createBroker({ config: { host: '127.0.0.1', mqttPort: port, ...config }, registry, clock, log: quietLog, metrics });
  };
  let broker = make(0);
  await broker.listen();
  const apps: { close(): Promise<unknown> }[] = [];
  const adminToken = 'test-admin-token-0123456789';
  const port = broker.addresses.mqtt?.port as number;
  const stack: Stack = {
    registry,
    metricsText: () => metrics.metrics(),
    get broker() {
      return broker;
    },
    port,
    brokerUrl: `mqtt://127.0.0.1:${port}`,
    dir,
    async device(id) {
      const ident = newIdentity(id);
      await registry.devices.create({ id, key: parsePublicKey(ident.publicKeyPem) }, 'test');
      return ident;
    },
    async service(name, acl) {
      const ident = newIdentity(`svc:${name}`);
      await registry.services.create({ name, key: parsePublicKey(ident.publicKeyPem), acl }, 'test');
      return ident;
    },
    async restartBroker(downMs) {
      await broker.close();
      await new Promise((r) => setTimeout(r, downMs));
      broker = make(port);
      await broker.listen();
    },
    async startHttp() {
      const app = await buildApp({ config: { adminToken, audience: config.audience ?? 'latchkey' }, registry, clock, metrics: new MetricsRegistry(), messaging: broker.messaging });
      apps.push(app);
      await app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
      const admin = async (method: string, p: string, body?: unknown) => {
        const res = await fetch(url + p, {
          method,
          headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, body: text.length > 0 ? JSON.parse(text) : null };
      };
      return { url, admin };
    },
    async close() {
      for (const app of apps) await app.close().catch(() => undefined);
      await broker.close().catch(() => undefined);
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/** A TCP proxy in front of the broker that counts every connection (= one MQTT CONNECT from mqtt.js). */
export interface CountingProxy {
  url: string;
  connections: number;
  /** Cuts every open connection (a network failure; the broker keeps persistent sessions). */
  drop(): void;
  /** While true, new connections are cut at once (the network stays down). */
  refusing: boolean;
  close(): Promise<void>;
}

export async function countingProxy(targetPort: number): Promise<CountingProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    proxy.connections++;
    if (proxy.refusing) {
      inbound.destroy();
      return;
    }
    const outbound = net.connect(targetPort, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const proxy: CountingProxy = {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: 0,
    refusing: false,
    drop() {
      for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  return proxy;
}

/** Resolves when `predicate` holds (polling every 10 ms); rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!(await predicate())) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a test's closers, last opened first; one that fails does not stop the others. Empties the list. */
export async function closeAll(closers: (() => Promise<unknown>)[]): Promise<void> {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
}
