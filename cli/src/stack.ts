import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createBroker, type Broker } from '@latchkey/broker';
import { registerConsole } from '@latchkey/console';
import { systemClock, type Clock } from '@latchkey/device-sdk/protocol';
import { buildApp, FleetEvents, loadOrCreateAdminToken, observeRegistry } from '@latchkey/provisioning';
import { openRegistry, redactDatabaseUrl, redactPassword, startRetention, type Registry, type RetentionTask } from '@latchkey/provisioning/registry';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry as MetricsRegistry } from 'prom-client';
import { CliError } from './cli-error.ts';
import type { UpConfig } from './config.ts';

/** One bound listener. */
export interface BoundAddress {
  host: string;
  port: number;
  /** e.g. `mqtt://127.0.0.1:1883` */
  url: string;
}

/** What `up` prints (docs/configuration.md): the actual addresses, also when configured with port 0. */
export interface StackAddresses {
  http: BoundAddress;
  /** null for `--role api` (no MQTT listener) */
  mqtt: BoundAddress | null;
  mqtts: BoundAddress | null;
  ws: BoundAddress | null;
}

export interface Stack {
  readonly addresses: StackAddresses;
  /** where the generated admin token is kept, or null when it came from the configuration */
  readonly adminTokenPath: string | null;
  readonly registry: Registry;
  readonly broker: Broker;
  /** background pruning of the audit log and expired enrollment tokens (docs/operations.md §Retention) */
  readonly retention: RetentionTask;
  /**
   * Ends MQTT sessions, stops HTTP, flushes device status and closes the database, all within
   * `deadlineMs` (docs/configuration.md: 5 s); the database is closed last whatever happened before.
   */
  close(deadlineMs?: number): Promise<void>;
}

export interface StackDeps {
  log: Logger;
  clock?: Clock;
}

export const DATABASE_FILE = 'latchkey.db';
/** how often retention runs (it also runs once at start) */
export const RETENTION_INTERVAL_MS = 60_000;
const CLOSE_DEADLINE_MS = 4_500;

/**
 * The composition root of `latchkey up` (and `simulate --embedded`): provisioning HTTP and the
 * MQTT broker in one process on one SQLite file, sharing one prom-client registry; the broker's
 * messaging is handed to the HTTP API. Steps, in order: data dir, database, admin token,
 * metrics, broker, HTTP app, listen. If a step fails, what was opened is closed again.
 *
 * @example
 * ```ts
 * const stack = await startStack(resolveUpConfig({ 'http-port': '0', 'mqtt-port': '0' }, {}), { log });
 * console.log(stack.addresses.mqtt.url);
 * await stack.close();
 * ```
 */
export async function startStack(config: UpConfig, deps: StackDeps): Promise<Stack> {
  const { log } = deps;
  const clock = deps.clock ?? systemClock;
  const cleanups: (() => Promise<void> | void)[] = [];
  const undo = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch((err) => log.error({ err }, 'cleanup after a failed start failed'));
  };
  try {
    // 1. data dir (0700: it holds the admin token and the registry)
    const dataDir = path.resolve(config.dataDir);
    await step('data-dir', () => mkdir(dataDir, { recursive: true, mode: 0o700 }));

    // 2. database
    // (the embedded SQLite file, or PostgreSQL shared with other latchkey processes)
    const registry = await step(config.databaseUrl === null ? 'data-dir' : 'database-url', () =>
      openRegistry(config.databaseUrl ?? path.join(dataDir, DATABASE_FILE), {
        clock,
        // one process: no session survives its restart. A cluster node must not zero the counts of
        // the sessions the other nodes hold (status.connected itself comes from presence)
        resetSessions: config.broker.redisUrl === null,
        onInternalError: (err) => log.error({ err }, 'registry internal error'),
      }),
    );
    cleanups.push(() => registry.close());

    // 3. admin token: configured, or generated once into <dataDir>/admin-token (0600)
    let adminToken: string;
    let adminTokenPath: string | null = null;
    if (config.adminToken !== null) {
      adminToken = config.adminToken;
    } else {
      const loaded = await step('admin-token', () => loadOrCreateAdminToken(dataDir));
      adminToken = loaded.token;
      adminTokenPath = loaded.path;
    }

    // 4. one metrics registry for HTTP and broker
    const metrics = new MetricsRegistry();
    collectDefaultMetrics({ register: metrics });

    // several nodes on one SQLite file are not a cluster
    if (config.broker.redisUrl !== null && config.databaseUrl === null) {
      log.warn(
        { nodeId: config.broker.nodeId },
        'the SQLite registry\'s change feed reaches only this process: with several nodes on one Redis, revocation would not reach the others; run one node per Redis with SQLite (docs/operations.md §Scaling out)',
      );
    }
    // 5. broker; what it records about devices also feeds the live views (console, /v1/events)
    const events = new FleetEvents((err) => log.error({ err }, 'a live view failed on an event'));
    const observed = observeRegistry(registry, events, clock, (err) => log.error({ err }, 'reading status for the live views failed'));
    cleanups.push(() => observed.close());
    const broker = createBroker({
      config: config.broker,
      registry: observed.brokerRegistry,
      // a status flip reaches the live views as it happens, not at the next status write
      onSessionEvent: observed.onSessionEvent,
      clock,
      log: log.child({ component: 'broker' }),
      metrics,
    });

    // 6. HTTP app, commands and config reaching devices through the broker, and the console at /console
    const app = await buildApp({
      config: { ...config.http, adminToken },
      registry,
      clock,
      log,
      metrics,
      messaging: broker.messaging,
      brokerReady: () => broker.ready,
      surface: config.role === 'broker' ? 'operations' : 'all',
      events,
    });
    cleanups.push(() => app.close());
    // the console is part of the API: a broker-only node (--role broker) serves neither
    if (config.role !== 'broker') {
      await registerConsole(app, {
        registry,
        broker: { get sessionCount() { return broker.sessionCount; }, messaging: broker.messaging, events },
        adminToken,
        clock,
      });
    }

    // 7. listen: broker first, so /readyz never reports ready without MQTT
    await step('mqtt', () => broker.listen({ serve: config.role !== 'api' }));
    cleanups.push(() => broker.close());
    await step('http', () => app.listen({ host: config.broker.host, port: config.httpPort }));

    // 8. bounded history, pruned in the background
    const retention = startRetention(registry.retention, {
      clock,
      policy: config.retention,
      intervalMs: RETENTION_INTERVAL_MS,
      onError: (err) => log.error({ err }, 'pruning the audit log failed'),
      onPruned: (counts) => log.info({ pruned: counts }, 'retention pruned old records'),
    });
    cleanups.push(() => retention.stop());

    const httpAddress = app.server.address() as AddressInfo;
    const b = broker.addresses;
    const addresses: StackAddresses = {
      http: bound('http', config.broker.host, httpAddress.port),
      mqtt: b.mqtt === null ? null : bound('mqtt', config.broker.host, b.mqtt.port),
      mqtts: b.mqtts === null ? null : bound('mqtts', config.broker.host, b.mqtts.port),
      ws: b.ws === null ? null : bound('ws', config.broker.host, b.ws.port),
    };
    // the URL may hold a password: only its redacted form is logged
    log.info({ addresses, dataDir, role: config.role, nodeId: broker.nodeId, registry: config.databaseUrl === null ? 'sqlite' : redactDatabaseUrl(config.databaseUrl) }, 'latchkey is up');

    let closing: Promise<void> | null = null;
    return {
      addresses,
      adminTokenPath,
      registry,
      broker,
      retention,
      close(deadlineMs = CLOSE_DEADLINE_MS) {
        retention.stop();
        closing ??= closeAll({ broker, app, registry, log, deadlineMs });
        return closing;
      },
    };
  } catch (e) {
    await undo();
    throw e;
  }

  async function step<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw startupError(what, config, e);
    }
  }
}

/** Sessions and HTTP in parallel, bounded by the deadline; the database always closes last. */
async function closeAll(o: {
  broker: Broker;
  app: { close(): Promise<unknown> };
  registry: Registry;
  log: Logger;
  deadlineMs: number;
}): Promise<void> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), o.deadlineMs);
  });
  const shutdown = Promise.allSettled([o.broker.close(), o.app.close()]).then((results) => {
    for (const r of results) if (r.status === 'rejected') o.log.error({ err: r.reason }, 'error while closing');
    return 'closed' as const;
  });
  const outcome = await Promise.race([shutdown, deadline]);
  clearTimeout(timer);
  if (outcome === 'deadline') o.log.warn({ deadlineMs: o.deadlineMs }, 'shutdown deadline reached; closing the database anyway');
  try {
    await o.registry.close();
  } catch (err) {
    o.log.error({ err }, 'closing the database failed');
  }
  o.log.info({ ms: Date.now() - started }, 'latchkey stopped');
}

function bound(scheme: 'http' | 'mqtt' | 'mqtts' | 'ws', host: string, port: number): BoundAddress {
  const h = host.includes(':') ? `[${host}]` : host;
  return { host, port, url: `${scheme}://${h}:${port}` };
}

/** A start-up failure as one line naming the setting involved (docs/configuration.md). */
function startupError(what: string, config: UpConfig, e: unknown): CliError {
  if (e instanceof CliError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const reason = code ?? (e instanceof Error ? e.message : String(e));
  const b = config.broker;
  switch (what) {
    case 'mqtt': {
      return new CliError('startup_failed', `cannot start MQTT on ${b.host} (--mqtt-port ${b.mqttPort}${b.mqttsPort !== null ? `, --mqtts-port ${b.mqttsPort}` : ''}${b.wsPort !== null ? `, --ws-port ${b.wsPort}` : ''}): ${reason}`, { cause: e });
    }
    case 'http':
      return new CliError('startup_failed', `cannot listen for HTTP on ${b.host}:${config.httpPort} (--http-port): ${reason}`, { cause: e });
    case 'database-url': {
      const url = config.databaseUrl as string;
      const cause = (e as { cause?: unknown }).cause;
      const detail = cause instanceof Error ? cause.message : e instanceof Error ? e.message : String(e);
      return new CliError('startup_failed', `cannot open the registry database ${redactDatabaseUrl(url)} (--database-url): ${redactPassword(detail, url)}`, { cause: e });
    }
    case 'data-dir':
      return new CliError('startup_failed', `cannot open the database in ${config.dataDir} (--data-dir): ${reason}`, { cause: e });
    default:
      return new CliError('startup_failed', `cannot prepare the admin token in ${config.dataDir} (--data-dir): ${reason}`, { cause: e });
  }
}
