/**
 * Broker nodes as child processes (node-child.ts) on one Redis and one registry file, for tests
 * that SIGKILL a node. Every child is killed at `close()`, and when this worker exits whatever
 * happened: an orphaned node heartbeating into a Redis corrupts the next test's results.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { BrokerConfigInput } from '../../../broker/src/index.ts';
import { openRegistry, type Registry } from '../../../provisioning/src/registry/index.ts';
import { connectClient, registrar, testClock, type BrokerFixture, type TestClock } from '../../broker/helpers/broker-fixture.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';

const CHILD = path.join(import.meta.dirname, 'node-child.ts');
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly nodeId: string;
  /** stderr JSON lines (warnings and errors) */
  readonly logs: object[];
  /** resolves with the exit code or signal when the process ends */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface ProcessCluster extends Pick<BrokerFixture, 'device' | 'service'> {
  redis: RedisServer;
  registry: Registry;
  clock: TestClock;
  nodes: NodeProcess[];
  start(config?: BrokerConfigInput): Promise<NodeProcess>;
  /** mqtt.js client on `node`, connected (rejects on refusal); closed at teardown */
  connect(node: NodeProcess, clientId: string, password: string, opts?: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export async function startProcessCluster(n: number, config: BrokerConfigInput = {}): Promise<ProcessCluster> {
  const redis = await startRedis();
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-nodes-'));
  const dbPath = path.join(dir, 'latchkey.db');
  const clock = testClock();
  const registry = openRegistry(dbPath, { clock });
  const nodes: NodeProcess[] = [];
  const clients: MqttClient[] = [];
  let started = 0;
  const start = async (extra: BrokerConfigInput = {}): Promise<NodeProcess> => {
    const nodeConfig = { redisUrl: redis.url, nodeId: `p${++started}`, heartbeatInterval: 0.5, ...config, ...extra };
    const child = spawn(process.execPath, ['--conditions=@latchkey/source', '--import', 'tsx', CHILD, JSON.stringify({ dbPath, config: nodeConfig })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    alive.add(child);
    const exited = new Promise<number | string>((resolve) =>
      child.once('exit', (code, signal) => {
        alive.delete(child);
        resolve(code ?? (signal as string));
      }),
    );
    const logs: object[] = [];
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => {
      try {
        logs.push(JSON.parse(l) as object);
      } catch {
        logs.push({ raw: l });
      }
    });
    const ready = await new Promise<{ port: number; nodeId: string }>((resolve, reject) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (l) => resolve(JSON.parse(l) as { port: number; nodeId: string }));
      void exited.then((code) => reject(new Error(`node exited (${code}) before listening: ${JSON.stringify(logs.slice(-3))}`)));
    });
    const node: NodeProcess = {
      child,
      ...ready,
      url: `mqtt://127.0.0.1:${ready.port}`,
      logs,
      exited,
      kill(signal = 'SIGTERM') {
        child.kill(signal);
        return exited;
      },
    };
    nodes.push(node);
    return node;
  };
  // in order: nodes[i] is p{i+1}
  const first = await Promise.all(Array.from({ length: n }, () => start()));
  nodes.splice(0, nodes.length, ...first);
  return {
    redis,
    registry,
    clock,
    nodes,
    start,
    ...registrar(registry, clock),
    async connect(node, clientId, password, opts = {}) {
      const client = await connectClient(node.url, clientId, password, opts);
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await Promise.all(nodes.map((node) => (node.child.exitCode === null && node.child.signalCode === null ? node.kill('SIGKILL') : undefined)));
      registry.close();
      rmSync(dir, { recursive: true, force: true });
      await redis.close();
    },
  };
}
