/**
 * `npm run bench -- cluster`: broker nodes on Redis (docs/benchmarks.md §Cluster: nodes on Redis), side by side in
 * one run. Two cores prove correctness, not scale: the nodes, Redis and the load generator share
 * the same two cores, so the figures are costs per connect and per message (for the paper model),
 * not a cluster's capacity.
 * - Authenticated connect rate: one node on the memory store, one node on Redis, two nodes on Redis
 *   (the connectors spread over both), alternating, a fresh token per CONNECT.
 * - Telemetry throughput: a device publishing QoS 1 telemetry (100 in flight) to a persistent
 *   service subscriber on the same node, on the memory store and on the Redis store, alternating.
 * Node CPU comes from each broker child's process.cpuUsage, Redis CPU from /proc/<pid>/stat.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import { mintConnectToken } from '../device-sdk/src/token/mint-token.ts';
import { cpuMicros, cycle, freshPlan, median } from './broker-connect.ts';
import { makeDevices, startBrokerChild, type BenchDevice, type BrokerChild } from './broker-children.ts';
import type { BenchResult } from './types.ts';

const DEVICES = 400;
const CONNECTORS = 40;
const PER_CONNECTOR = 25;
const WARMUP_PER_CONNECTOR = 10;
const CONNECT_ROUNDS = 3;
const MESSAGES = 3000;
const WINDOW = 100;
const TELEMETRY_ROUNDS = 3;
const FLAGS = ['--no-memory-reducer'];
const SINK_ACL = { publish: [], subscribe: ['devices/+/telemetry'] };
const LABEL = 'two cores prove correctness, not scale: nodes, Redis and load share 2 cores; read the costs, not the rates';

/** A throwaway redis-server (no persistence) and its CPU time so far, in µs. */
async function startRedis(): Promise<{ url: string; cpuUs(): number; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-redis-'));
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50 });
  client.on('error', () => undefined);
  await client.ping();
  client.disconnect();
  return {
    url: `redis://127.0.0.1:${port}`,
    // utime + stime in clock ticks (100 per second on Linux)
    cpuUs: () => {
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return (Number(fields[11]) + Number(fields[12])) * 10_000;
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Cost {
  rate: number;
  nodeUs: number;
  redisUs: number;
}

/** One round of connect cycles spread over `nodes`; the rate and the CPU per connect. */
async function connectRound(nodes: readonly BrokerChild[], plan: Buffer[][], redisCpu: () => number): Promise<Cost> {
  const before = await Promise.all(nodes.map((n) => n.request<NodeJS.CpuUsage>('cpu')));
  const redisBefore = redisCpu();
  const started = performance.now();
  await Promise.all(
    plan.map(async (packets, w) => {
      const port = (nodes[w % nodes.length] as BrokerChild).port;
      for (const p of packets) await cycle(port, p);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const after = await Promise.all(nodes.map((n) => n.request<NodeJS.CpuUsage>('cpu')));
  const n = plan.flat().length;
  const nodeUs = after.reduce((sum, a, i) => sum + cpuMicros(a) - cpuMicros(before[i] as NodeJS.CpuUsage), 0);
  return { rate: n / seconds, nodeUs: nodeUs / n, redisUs: (redisCpu() - redisBefore) / n };
}

const connectOf = async (url: string, id: string, key: BenchDevice['privateKey'], clean: boolean): Promise<MqttClient> =>
  mqtt.connectAsync(url, {
    clientId: id,
    username: 'x',
    password: (await mintConnectToken({ subject: id, privateKey: key, ttlSeconds: 3600 })).token,
    clean,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });

/** `MESSAGES` QoS 1 telemetry messages, `WINDOW` in flight, until the subscriber has them all. */
async function telemetryRound(node: BrokerChild, device: BenchDevice, sink: BenchDevice, redisCpu: () => number): Promise<Cost> {
  const url = `mqtt://127.0.0.1:${node.port}`;
  const sub = await connectOf(url, 'svc:sink', sink.privateKey, false);
  await sub.subscribeAsync('devices/+/telemetry', { qos: 1 });
  const pub = await connectOf(url, device.id, device.privateKey, true);
  let received = 0;
  const all = new Promise<void>((resolve) =>
    sub.on('message', () => {
      if (++received === MESSAGES) resolve();
    }),
  );
  const before = await node.request<NodeJS.CpuUsage>('cpu');
  const redisBefore = redisCpu();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < MESSAGES) await pub.publishAsync(`devices/${device.id}/telemetry`, String(next++), { qos: 1 });
    }),
  );
  await all;
  const seconds = (performance.now() - started) / 1000;
  const after = await node.request<NodeJS.CpuUsage>('cpu');
  const cost = { rate: MESSAGES / seconds, nodeUs: (cpuMicros(after) - cpuMicros(before)) / MESSAGES, redisUs: (redisCpu() - redisBefore) / MESSAGES };
  await pub.endAsync();
  await sub.endAsync();
  return cost;
}

const summary = (xs: Cost[]): Cost => ({ rate: median(xs.map((x) => x.rate)), nodeUs: median(xs.map((x) => x.nodeUs)), redisUs: median(xs.map((x) => x.redisUs)) });
const line = (label: string, c: Cost, unit: string, all: Cost[]) =>
  `${label.padEnd(30)} ${c.rate.toFixed(0).padStart(5)} ${unit}/s (rounds ${all.map((x) => x.rate.toFixed(0)).join(' ')}), node CPU ${c.nodeUs.toFixed(0)} µs, Redis CPU ${c.redisUs.toFixed(0)} µs per ${unit === 'connects' ? 'connect' : 'message'}`;

export async function benchCluster(): Promise<BenchResult> {
  const devices = makeDevices(DEVICES);
  const [sink, publisher] = makeDevices(2) as [BenchDevice, BenchDevice];
  const services = [{ name: 'sink', publicKeyPem: sink.publicKeyPem, acl: SINK_ACL }];
  const all = [...devices, { ...publisher, id: 'bench-pub' }];
  const pubDevice = { ...publisher, id: 'bench-pub' };
  const warmup = await freshPlan(devices, WARMUP_PER_CONNECTOR, CONNECTORS);
  const plans = await Promise.all(Array.from({ length: CONNECT_ROUNDS * 3 }, () => freshPlan(devices, PER_CONNECTOR, CONNECTORS)));
  const redis = await startRedis();
  const base = { authFailureLimit: 0 };
  const memory = await startBrokerChild('auth', all, FLAGS, base, services);
  const a = await startBrokerChild('auth', all, FLAGS, { ...base, redisUrl: redis.url, nodeId: 'bench-a' }, services);
  const b = await startBrokerChild('auth', all, FLAGS, { ...base, redisUrl: redis.url, nodeId: 'bench-b' }, services);
  const configs: Array<{ label: string; nodes: BrokerChild[] }> = [
    { label: '1 node, memory store', nodes: [memory] },
    { label: '1 node, Redis store', nodes: [a] },
    { label: '2 nodes, Redis store', nodes: [a, b] },
  ];
  const connects = new Map(configs.map((c) => [c.label, [] as Cost[]]));
  const telemetry = { memory: [] as Cost[], redis: [] as Cost[] };
  try {
    for (const c of configs) await connectRound(c.nodes, warmup, redis.cpuUs);
    let plan = 0;
    for (let r = 0; r < CONNECT_ROUNDS; r++) {
      for (const c of [...configs.slice(r % 3), ...configs.slice(0, r % 3)]) connects.get(c.label)?.push(await connectRound(c.nodes, plans[plan++] as Buffer[][], redis.cpuUs));
    }
    await telemetryRound(memory, pubDevice, sink, redis.cpuUs); // warm-up
    await telemetryRound(a, pubDevice, sink, redis.cpuUs);
    for (let r = 0; r < TELEMETRY_ROUNDS; r++) {
      telemetry.memory.push(await telemetryRound(memory, pubDevice, sink, redis.cpuUs));
      telemetry.redis.push(await telemetryRound(a, pubDevice, sink, redis.cpuUs));
    }
  } finally {
    await Promise.all([memory, a, b].map((c) => c.stop()));
    await redis.stop();
  }
  const lines = [
    LABEL,
    `authenticated connects (CONNECT → CONNACK → DISCONNECT, clean session, a fresh token each), ${CONNECTORS} connectors, ${CONNECT_ROUNDS} rounds × ${CONNECTORS * PER_CONNECTOR} per configuration, order rotated:`,
  ];
  const metrics: Record<string, number> = {};
  for (const c of configs) {
    const rounds = connects.get(c.label) as Cost[];
    const s = summary(rounds);
    lines.push(`  ${line(c.label, s, 'connects', rounds)}`);
    const key = c.label.replace(/[^a-z0-9]+/gi, '_');
    Object.assign(metrics, { [`${key}_rate`]: s.rate, [`${key}_nodeUs`]: s.nodeUs, [`${key}_redisUs`]: s.redisUs });
  }
  const one = summary(connects.get('1 node, Redis store') as Cost[]);
  const two = summary(connects.get('2 nodes, Redis store') as Cost[]);
  const mem = summary(connects.get('1 node, memory store') as Cost[]);
  lines.push(`  ratio 2 nodes / 1 node (Redis): ${(two.rate / one.rate).toFixed(2)}× the connect rate; Redis store / memory store (1 node): ${(one.rate / mem.rate).toFixed(2)}×`);
  lines.push(`QoS 1 telemetry, ${MESSAGES} messages, ${WINDOW} in flight, to a persistent (clean=false) service subscriber on the same node, ${TELEMETRY_ROUNDS} rounds alternating:`);
  const tm = summary(telemetry.memory);
  const tr = summary(telemetry.redis);
  lines.push(`  ${line('memory store', tm, 'messages', telemetry.memory)}`, `  ${line('Redis store', tr, 'messages', telemetry.redis)}`);
  lines.push(`  ratio Redis / memory: ${(tr.rate / tm.rate).toFixed(2)}× the throughput, ${(tr.nodeUs / tm.nodeUs).toFixed(2)}× the node CPU per message`);
  Object.assign(metrics, {
    twoOverOneNode: two.rate / one.rate,
    telemetryMemoryRate: tm.rate,
    telemetryRedisRate: tr.rate,
    telemetryMemoryNodeUs: tm.nodeUs,
    telemetryRedisNodeUs: tr.nodeUs,
    telemetryRedisRedisUs: tr.redisUs,
  });
  return { name: 'cluster', lines, metrics };
}
