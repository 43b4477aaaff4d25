/**
 * Several broker nodes in this process on one real Redis (a throwaway redis-server of the test's
 * own) and one SQLite registry, whose change feed reaches every node as PostgreSQL's would: what
 * the broker's cluster code does, without separate processes (test/cluster/*-process tests kill
 * real ones).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import { Registry as MetricsRegistry } from 'prom-client';
import { createBroker, type Broker, type BrokerConfigInput } from '../../../broker/src/index.ts';
import { openRegistry, type Registry } from '../../../provisioning/src/registry/index.ts';
import { connectClient, recordingLog, registrar, testClock, type BrokerFixture, type TestClock } from '../../broker/helpers/broker-fixture.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';

export interface ClusterNode {
  broker: Broker;
  log: ReturnType<typeof recordingLog>;
  metrics: MetricsRegistry;
  url: string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export interface ClusterFixture extends Pick<BrokerFixture, 'device' | 'service'> {
  redis: RedisServer;
  registry: Registry;
  clock: TestClock;
  nodes: ClusterNode[];
  /** starts one more node on the same Redis and registry */
  addNode(config?: BrokerConfigInput): Promise<ClusterNode>;
  /** mqtt.js client on node `i`, connected (rejects on refusal); closed at teardown */
  connect(i: number, clientId: string, password: string, opts?: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

/** `config` applies to every node (a short heartbeat, limits); each listens on port 0. */
export async function startCluster(n: number, config: BrokerConfigInput = {}, opts: { redis?: RedisServer } = {}): Promise<ClusterFixture> {
  const redis = opts.redis ?? (await startRedis());
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-cluster-'));
  const clock = testClock();
  const registry = await openRegistry(path.join(dir, 'latchkey.db'), { clock });
  const clients: MqttClient[] = [];
  const nodes: ClusterNode[] = [];
  const addNode = async (extra: BrokerConfigInput = {}): Promise<ClusterNode> => {
    const log = recordingLog();
    const metrics = new MetricsRegistry();
    const broker = createBroker({
      config: { host: '127.0.0.1', mqttPort: 0, redisUrl: redis.url, nodeId: `n${nodes.length + 1}`, heartbeatInterval: 0.5, ...config, ...extra },
      registry,
      clock,
      log,
      metrics,
    });
    await broker.listen();
    const node: ClusterNode = {
      broker,
      log,
      metrics,
      url: `mqtt://127.0.0.1:${broker.addresses.mqtt?.port}`,
      async metric(name, labels = {}) {
        const m = await metrics.getSingleMetric(name)?.get();
        const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val));
        return v?.value ?? 0;
      },
    };
    nodes.push(node);
    return node;
  };
  for (let i = 0; i < n; i++) await addNode();
  return {
    redis,
    registry,
    clock,
    nodes,
    addNode,
    ...registrar(registry, clock),
    async connect(i, clientId, password, o = {}) {
      // a node process loading a persistent session from Redis can take seconds to CONNACK with both cores saturated: a liveness bound, not a speed check
      const client = await connectClient((nodes[i] as ClusterNode).url, clientId, password, { connectTimeout: 30_000, ...o });
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await Promise.all(nodes.map((node) => node.broker.close()));
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
      if (opts.redis === undefined) await redis.close();
    },
  };
}
