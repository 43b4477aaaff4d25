/**
 * A real provisioning API on 127.0.0.1 port 0 over a real registry, with an injected clock;
 * `fetch` against it; and a full snapshot of the database to prove that refused requests changed
 * nothing. The registry is a SQLite file in a temp dir, or with `backend: 'postgres'` this test
 * file's PostgreSQL schema (test/registry/registry-fixture.ts). With `broker`, the real broker runs
 * on the same registry and clock (port 0) and its messaging port is the API's, as `latchkey up`
 * wires them.
 */
import { createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { Registry as MetricsRegistry } from 'prom-client';
import { buildApp, type AppDeps, type HttpConfig } from '../../provisioning/src/index.ts';
import { createBroker, type Broker, type BrokerConfigInput } from '../../broker/src/index.ts';
import { memoryPersistence } from '../../broker/src/aedes-internals.ts';
import type { Registry } from '../../provisioning/src/registry/index.ts';
import { registryFixture, type BackendName, type TestClock } from '../registry/registry-fixture.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

export interface ApiResponse {
  status: number;
  contentType: string | null;
  body: any;
  headers: Headers;
}

export interface HttpFixture {
  url: string;
  app: FastifyInstance;
  registry: Registry;
  clock: TestClock;
  metrics: MetricsRegistry;
  backend: BackendName;
  /** JSON request (body serialized unless it is a string); admin token unless `headers` says otherwise */
  api(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** every row of every table, for before/after comparisons */
  snapshot(): Promise<Record<string, unknown[]>>;
  /** Runs a request that must be refused with this status and code, and proves the database did not change; returns the body. */
  refused(req: () => Promise<ApiResponse>, status: number, code: string): Promise<any>;
  /** With `broker`: the broker, its `mqtt://` URL, and the retained payloads its persistence holds for a topic */
  broker: Broker | null;
  mqttUrl: string;
  retained(topic: string): Promise<Buffer[]>;
  close(): Promise<void>;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

export async function startApi(
  extra: Omit<Partial<AppDeps>, 'config'> & { config?: Partial<HttpConfig>; log?: Logger; broker?: BrokerConfigInput; backend?: BackendName } = {},
): Promise<HttpFixture> {
  const { backend: backendOption, ...withoutBackend } = extra;
  const backend = backendOption ?? 'sqlite';
  const db = await registryFixture(backend);
  const { clock, registry } = db;
  const metrics = new MetricsRegistry();
  const { config: extraConfig, broker: brokerConfig, ...rest } = withoutBackend;
  const persistence = memoryPersistence();
  const broker: Broker | null =
    brokerConfig === undefined ? null : createBroker({ config: { host: '127.0.0.1', mqttPort: 0, ...brokerConfig }, registry, clock, log: quiet, metrics, persistence });
  await broker?.listen();
  if (broker !== null) rest.messaging = broker.messaging;
  const app = await buildApp({ registry, clock, metrics, ...rest, config: { adminToken: ADMIN_TOKEN, ...extraConfig } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${address.port}`;
  const fx: HttpFixture = {
    url,
    app,
    registry,
    clock,
    metrics,
    backend,
    async api(method, route, body, headers = ADMIN) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + route, init);
      const text = await res.text();
      const contentType = res.headers.get('content-type');
      let parsed: unknown = text;
      if (contentType?.includes('json') && text.length > 0) parsed = JSON.parse(text);
      return { status: res.status, contentType, body: parsed, headers: res.headers };
    },
    async snapshot() {
      const tables = (
        await db.rows(
          backend === 'sqlite'
            ? "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            : 'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name',
        )
      ).map((r) => r.name as string);
      const out: Record<string, unknown[]> = {};
      // every column, in a stable order (SQLite's rowid; PostgreSQL's rows as text, ordered)
      for (const t of tables) {
        out[t] = backend === 'sqlite' ? await db.rows(`SELECT * FROM "${t}" ORDER BY rowid`) : (await db.rows(`SELECT t::text AS row FROM "${t}" t ORDER BY 1`)).map((r) => r.row);
      }
      return out;
    },
    async refused(req, status, code) {
      const before = await fx.snapshot();
      const body = problem(await req(), status, code);
      expect(await fx.snapshot()).toEqual(before);
      return body;
    },
    broker,
    mqttUrl: broker === null ? '' : `mqtt://127.0.0.1:${broker.addresses.mqtt?.port}`,
    async retained(topic) {
      const out: Buffer[] = [];
      for await (const packet of persistence.createRetainedStream(topic)) out.push(Buffer.from(packet.payload));
      return out;
    },
    async close() {
      await app.close();
      await broker?.close();
      await db.cleanup();
    },
  };
  return fx;
}

export interface DeviceKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  pem: string;
  jwk: Record<string, unknown>;
}

export function deviceKey(): DeviceKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKey,
    publicKey,
    pem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    jwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown>,
  };
}

/** An ES256 JWS (P1363 signature) over any header and payload, for proofs. */
export function signJwt(privateKey: KeyObject, payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'ES256', typ: 'JWT' }): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  const sig = createSign('sha256').update(input).sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** Expects a problem+json refusal with this status and code; returns the body. */
export function problem(res: ApiResponse, status: number, code: string): any {
  if (res.status !== status || res.body?.code !== code || !res.contentType?.startsWith('application/problem+json')) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  }
  return res.body;
}

/** A pino logger at `level` whose JSON lines are collected in `lines`. */
export function capturingLogger(lines: string[], level: pino.LevelWithSilent = 'debug'): Logger {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return pino({ level }, sink);
}
