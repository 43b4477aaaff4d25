/**
 * Cluster nodes as real `latchkey up` processes (docs/operations.md §Scaling out) on one Redis and one
 * registry, for the tests that SIGKILL a node or drive several nodes' HTTP APIs. The registry is a
 * fresh PostgreSQL database (`--database-url`) when the test services provide PostgreSQL, which CI
 * always does; without it, one SQLite file in a shared data dir, whose change feed stays in each
 * process (what a node learns of a block or delete, it learns by reading the registry). The test
 * opens the same registry itself, to register devices and services directly (`device`, `service`)
 * where the HTTP API is not what it tests. Every child is killed at `close()`, and when this worker
 * exits whatever happened: an orphaned node heartbeating into a Redis corrupts the next test's results.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import pg from 'pg';
import { openRegistry, type Registry } from '../../../provisioning/src/registry/index.ts';
import { connectClient, registrar, testClock, type BrokerFixture, type TestClock } from '../../broker/helpers/broker-fixture.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';
import { requireService } from '../../helpers/services.ts';
import { startUp } from '../../cli/cli-process.ts';

const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

/** The admin token every node of a process cluster takes (LATCHKEY_ADMIN_TOKEN). */
export const CLUSTER_ADMIN_TOKEN = 'c'.repeat(40);

export interface NodeProcess {
  readonly child: ChildProcess;
  /** `--node-id`: p1, p2, … in start order */
  readonly nodeId: string;
  /** its MQTT port and URL */
  readonly port: number;
  readonly url: string;
  /** its HTTP base URL (the whole API with role both; only the operations endpoints with role broker) */
  readonly httpUrl: string;
  /** what it wrote on stderr (its JSON log lines) */
  stderr(): string;
  /** resolves with the exit code or signal when the process ends */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface ProcessClusterOptions {
  /** `--role` of every node: `broker` (default; MQTT only) or `both` (MQTT and the HTTP API) */
  role?: 'broker' | 'both';
  /** the registry's PostgreSQL URL (e.g. a server the test restarts); default: a fresh database on the test services' server, or SQLite without one */
  databaseUrl?: string;
  /** Redis options (e.g. `appendonly` for a test that restarts it) */
  redis?: { appendonly?: boolean };
  /** extra `latchkey up` flags for every node */
  args?: string[];
}

export interface ProcessCluster extends Pick<BrokerFixture, 'device' | 'service'> {
  redis: RedisServer;
  /** the registry the nodes share, opened by the test */
  registry: Registry;
  /** 'postgres' or 'sqlite' */
  backend: 'postgres' | 'sqlite';
  clock: TestClock;
  nodes: NodeProcess[];
  /** starts one more node (the next id) */
  start(): Promise<NodeProcess>;
  /** mqtt.js client on `node`, connected (rejects on refusal); closed at teardown */
  connect(node: NodeProcess, clientId: string, password: string, opts?: IClientOptions): Promise<MqttClient>;
  /** an admin request to `node`'s HTTP API: status and parsed JSON body (null when empty) */
  api(node: NodeProcess, method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

/** A new, empty database on the PostgreSQL server of `serverUrl`; `drop()` removes it. */
async function freshDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `lk_nodes_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** `n` nodes (`latchkey up --role <role> --node-id p<i>`) on a Redis of the test's own and one registry. */
export async function startProcessCluster(n: number, options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
  const redis = await startRedis(options.redis ?? {});
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-nodes-'));
  const clock = testClock();
  const server = requireService('postgres').url;
  const database = options.databaseUrl !== undefined ? { url: options.databaseUrl, drop: async () => undefined } : server !== null ? await freshDatabase(server) : null;
  // opened (and migrated) before any node starts, so the nodes only read the schema
  const registry = await openRegistry(database?.url ?? path.join(dir, 'latchkey.db'), { clock });
  const nodes: NodeProcess[] = [];
  const clients: MqttClient[] = [];
  let started = 0;
  const start = async (): Promise<NodeProcess> => {
    const nodeId = `p${++started}`;
    const env: Record<string, string> = { LATCHKEY_ADMIN_TOKEN: CLUSTER_ADMIN_TOKEN, LATCHKEY_REDIS_URL: redis.url, LATCHKEY_HEARTBEAT_INTERVAL: '0.5' };
    if (database !== null) env.LATCHKEY_DATABASE_URL = database.url;
    const stack = await startUp(['--role', options.role ?? 'broker', '--node-id', nodeId, '--data-dir', dir, '--log-level', 'warn', ...(options.args ?? [])], {
      cwd: dir,
      env,
      onSpawn: (child) => {
        alive.add(child);
        child.once('exit', () => alive.delete(child));
      },
    });
    const exited = stack.exited.then(({ code, signal }) => code ?? (signal as string));
    return {
      child: stack.child,
      nodeId,
      port: Number(new URL(stack.mqttUrl).port),
      url: stack.mqttUrl,
      httpUrl: stack.httpUrl,
      stderr: stack.stderr,
      exited,
      kill(signal = 'SIGTERM') {
        if (stack.child.exitCode === null && stack.child.signalCode === null) stack.child.kill(signal);
        return exited;
      },
    };
  };
  const teardown = async () => {
    await registry.close();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
    await redis.close();
  };
  // in order: nodes[i] is p{i+1}
  try {
    nodes.push(...(await Promise.all(Array.from({ length: n }, () => start()))));
  } catch (err) {
    for (const child of alive) child.kill('SIGKILL');
    await teardown();
    throw err;
  }
  return {
    redis,
    registry,
    backend: database === null ? 'sqlite' : 'postgres',
    clock,
    nodes,
    async start() {
      const node = await start();
      nodes.push(node);
      return node;
    },
    ...registrar(registry, clock),
    async connect(node, clientId, password, opts = {}) {
      const client = await connectClient(node.url, clientId, password, opts);
      clients.push(client);
      return client;
    },
    async api(node, method, urlPath, body) {
      const res = await fetch(`${node.httpUrl}${urlPath}`, {
        method,
        headers: { authorization: `Bearer ${CLUSTER_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text === '' ? null : JSON.parse(text) };
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
      await teardown();
    },
  };
}
