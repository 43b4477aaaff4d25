import { parsePrincipal, type Clock } from '@latchkey/device-sdk/protocol';
import { AuditStore } from './audit.ts';
import { ChangeFeed, InProcessFeed, type FeedBackend, type FeedHealth } from './change-feed.ts';
import { ConfigStateStore } from './config-state.ts';
import { RegistryContext } from './context.ts';
import { checkDatabaseUrl } from './database-url.ts';
import { DeviceStore } from './devices.ts';
import { EnrollmentStore } from './enrollment.ts';
import { FleetStats } from './fleet-stats.ts';
import { findBinding, GcpStore } from './gcp-store.ts';
import { toRegistryError } from './errors.ts';
import { migratePostgres } from './migrations-postgres.ts';
import { all, D, json, same, sql, type Dialect, type Plan } from './plan.ts';
import { feedChannel, PostgresFeed, type PostgresFeedTimings } from './postgres-feed.ts';
import { clientConfig, openPool, postgresRunner, type PostgresTarget } from './postgres-runner.ts';
import { RetentionStore } from './retention.ts';
import type { Runner } from './runner.ts';
import { ServiceStore } from './services.ts';
import { openSqlite } from './sqlite-runner.ts';
import { StatusStore, type SessionEvent } from './status.ts';
import { recordCredentialUses } from './credentials.ts';
import { requiresSignedTelemetry } from './signed-telemetry.ts';
import type { AuthFailure, CredentialUse, JsonObject, PrincipalRecord, RegistryChange, ServiceAcl } from './types.ts';

/** A principal's row (`found`: a device's `blocked`, a service's `acl`; null when unknown) with one credential, or none. */
interface PrincipalRow {
  found: unknown;
  /** a device's metadata (a service's acl again: both queries have one shape) */
  extra: unknown;
  kid: string | null;
  spki_der: Buffer | null;
  expires_at: number | null;
}
const principalQuery = (table: string, key: string, found: string, extra: string) => sql`
  SELECT p.${same(found)} AS found, p.${same(extra)} AS extra, c.kid AS kid, c.spki_der AS spki_der, c.expires_at AS expires_at
  FROM (SELECT CAST(? AS text) AS key, CAST(? AS text) AS principal) AS q
  LEFT JOIN ${same(table)} AS p ON p.${same(key)} = q.key
  LEFT JOIN credentials AS c ON c.principal = q.principal
  ORDER BY c.created_at, c.${D.insertionOrder}`;
const DEVICE_PRINCIPAL = principalQuery('devices', 'id', 'blocked', 'metadata');
const SERVICE_PRINCIPAL = principalQuery('services', 'name', 'acl', 'acl');


/** A device id, or a service principal: one statement either way (issue 16: the lookup's cost does not tell whether an id exists). */
function* findPrincipal(principal: string): Plan<PrincipalRecord | null> {
  // parsePrincipal: the protocol core's one reading of `svc:`; a query either way (constant work)
  const named = parsePrincipal(principal);
  const service = named?.kind === 'service' ? named.serviceName : null;
  const rows = yield* all<PrincipalRow>(service !== null ? SERVICE_PRINCIPAL : DEVICE_PRINCIPAL, service ?? principal, principal);
  // a device's Cloud IoT Core binding, asked for a known and an unknown device alike (constant work)
  const gcp = service === null ? yield* findBinding(principal) : null;
  const first = rows[0];
  if (first === undefined || first.found === null) return null;
  const credentials = rows
    .filter((r) => r.kid !== null)
    .map((r) => ({ kid: r.kid as string, spkiDer: new Uint8Array(r.spki_der as Buffer), expiresAt: r.expires_at }));
  return service !== null
    ? { kind: 'service', principal, blocked: false, acl: json<ServiceAcl>(first.found), credentials, signedTelemetry: false }
    : {
        kind: 'device',
        principal,
        blocked: first.found === true || first.found === 1,
        acl: null,
        credentials,
        signedTelemetry: requiresSignedTelemetry(json<JsonObject>(first.extra)),
        ...(gcp === null ? {} : { gcp }),
      };
}

export interface RegistryOptions {
  /** epoch ms; every stored time comes from it */
  clock: Clock;
  /** told about listener exceptions, a change feed that went down, and a PostgreSQL pool's idle-connection errors */
  onInternalError?: (err: unknown) => void;
  /** zero every device's live-session count at open (default true: no session survives a restart) */
  resetSessions?: boolean;
  /** PostgreSQL only */
  postgres?: {
    /** a schema instead of the role's default `search_path` (created when missing); [a-z_][a-z0-9_]* */
    schema?: string | null;
    /** connections in the pool (default 10) */
    poolSize?: number;
    /** the change feed's timings (tests shorten them) */
    feed?: Partial<PostgresFeedTimings>;
  };
}

/**
 * The device registry: the only code that speaks SQL, on SQLite (one file, one process) or
 * PostgreSQL (shared by several latchkey processes). Every operation is asynchronous and written
 * once for both (plan.ts). Structurally implements the broker's `BrokerRegistryPort`
 * (findPrincipal, onChange, feed, record*, saveState).
 *
 * @example
 * ```ts
 * const registry = await openRegistry('./data/latchkey.db', { clock: Date.now });
 * await registry.devices.create({ id: 'thermo-1', key: parsePublicKey(pem, Date.now()) }, 'admin');
 * await registry.close();
 * ```
 */
export class Registry {
  /** which database this registry is on */
  readonly backend: Dialect;
  readonly devices: DeviceStore;
  readonly services: ServiceStore;
  readonly enrollment: EnrollmentStore;
  readonly configState: ConfigStateStore;
  readonly status: StatusStore;
  readonly audit: AuditStore;
  readonly retention: RetentionStore;
  /** read-only fleet figures (connected count, statuses, refusals by minute) */
  readonly stats: FleetStats;
  /** Cloud IoT Core bindings, raw configs and the import */
  readonly gcp: GcpStore;
  /** the change feed's health: `downForMs`, `sync`, `onState` */
  readonly feed: FeedHealth;
  readonly #runner: Runner;
  readonly #ctx: RegistryContext;
  readonly #fanout: ChangeFeed;
  readonly #feed: FeedBackend;
  #closing: Promise<void> | null = null;

  constructor(runner: Runner, clock: Clock, fanout: ChangeFeed, feed: FeedBackend) {
    this.backend = runner.dialect;
    this.#runner = runner;
    this.#fanout = fanout;
    this.#feed = feed;
    this.feed = feed;
    this.#ctx = new RegistryContext(runner, clock, feed);
    this.devices = new DeviceStore(this.#ctx);
    this.services = new ServiceStore(this.#ctx);
    this.enrollment = new EnrollmentStore(this.#ctx);
    this.configState = new ConfigStateStore(this.#ctx);
    this.status = new StatusStore(this.#ctx);
    this.audit = new AuditStore(this.#ctx);
    this.retention = new RetentionStore(this.#ctx);
    this.stats = new FleetStats(this.#ctx);
    this.gcp = new GcpStore(this.#ctx);
  }

  /**
   * The principal (device id or `svc:{name}`) with its credentials, or null when it is unknown.
   * Rejects (`internal_error`) when the database fails: the broker answers that CONNECT with
   * CONNACK 3, server unavailable, never with 4 (unknown), which the SDK would treat as fatal.
   */
  findPrincipal(principal: string): Promise<PrincipalRecord | null> {
    return this.#ctx.read(() => findPrincipal(principal));
  }

  /** Subscribes to changes committed from now on; returns the unsubscribe function. */
  onChange(listener: (change: RegistryChange) => void): () => void {
    return this.#fanout.subscribe(listener);
  }

  recordConnected(deviceId: string, at: number): Promise<void> {
    return this.status.connected(deviceId, at);
  }

  recordDisconnected(deviceId: string, at: number): Promise<void> {
    return this.status.disconnected(deviceId, at);
  }

  /**
   * The broker's batched session events (BrokerRegistryPort.recordSessionEvents): one
   * transaction for the whole batch, same semantics as recordConnected/recordDisconnected per
   * event. A malformed batch is caller misuse: TypeError, nothing written.
   *
   * @example
   * ```ts
   * await registry.recordSessionEvents([{ deviceId: 'thermo-1', type: 'connected', at: Date.now() }]);
   * ```
   */
  recordSessionEvents(events: ReadonlyArray<SessionEvent>): Promise<void> {
    if (!Array.isArray(events)) throw new TypeError('events must be an array');
    for (const e of events as ReadonlyArray<Partial<SessionEvent> | null>) {
      if (e === null || typeof e !== 'object' || typeof e.deviceId !== 'string' || (e.type !== 'connected' && e.type !== 'disconnected') || !Number.isFinite(e.at)) {
        throw new TypeError('each event must be { deviceId: string, type: "connected" | "disconnected", at: epoch ms }');
      }
    }
    return this.status.sessionEvents(events);
  }

  recordSeen(entries: ReadonlyArray<readonly [deviceId: string, at: number]>): Promise<void> {
    return this.status.seen(entries);
  }

  /**
   * The broker's batched credential usage (BrokerRegistryPort.recordCredentialUses): when each
   * credential last verified a connect and a signed message, for the whole batch in one transaction.
   */
  recordCredentialUses(uses: ReadonlyArray<CredentialUse>): Promise<void> {
    if (uses.length === 0) return Promise.resolve();
    return this.#ctx.write(() => recordCredentialUses(uses));
  }

  recordAuthFailure(failure: AuthFailure): Promise<void> {
    return this.status.authFailure(failure);
  }

  recordLastErrors(entries: ReadonlyArray<readonly [deviceId: string, code: string, at: number]>): Promise<void> {
    return this.status.lastErrors(entries);
  }

  saveState(deviceId: string, stateJson: string, at: number): Promise<void> {
    return this.configState.saveState(deviceId, stateJson, at);
  }

  /** Every device's current config, a page at a time (the broker's retained-config re-seed at start). */
  allConfigs(after: string | null, limit: number): Promise<Array<{ deviceId: string; version: number; config: JsonObject }>> {
    return this.configState.allConfigs(after, limit);
  }

  /** BrokerRegistryPort.deviceIdOfNumId: the device imported with this Cloud IoT Core numId, or null. */
  deviceIdOfNumId(numId: string): Promise<string | null> {
    return this.gcp.deviceIdOfNumId(numId);
  }

  /** BrokerRegistryPort.findGcpConfig: the latest config as raw bytes, or null. */
  findGcpConfig(deviceId: string): Promise<{ version: number; data: Buffer } | null> {
    return this.gcp.config(deviceId);
  }

  /** BrokerRegistryPort.recordConfigAck: the device PUBACKed this config version. */
  recordConfigAck(deviceId: string, version: number, at: number): Promise<void> {
    return this.gcp.recordConfigAck(deviceId, version, at);
  }

  /** For readiness probes: true when the database answers (SQLite: and passes a quick check). */
  ping(): Promise<boolean> {
    return this.#runner.ping();
  }

  get open(): boolean {
    return this.#runner.open && this.#closing === null;
  }

  /** Stops the change feed and closes the database (idempotent). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#feed.close().catch(() => undefined);
      await this.#runner.close();
    })();
    return this.#closing;
  }
}

/**
 * Opens the registry at `location` and migrates it to the newest schema:
 * - a `postgres://` or `postgresql://` URL: PostgreSQL (a pool, and the change feed's own connection);
 * - anything else is a SQLite file path (`:memory:` works too), created if needed, in WAL mode.
 *
 * Rejects with a TypeError for bad options or a schema newer than this latchkey, and with a
 * RegistryError (`internal_error`, the cause kept) when the database cannot be opened.
 */
export async function openRegistry(location: string, options: RegistryOptions): Promise<Registry> {
  if (typeof location !== 'string' || location.length === 0) throw new TypeError('registry location must be a non-empty string');
  if (typeof options?.clock !== 'function') throw new TypeError('options.clock must be a function returning epoch ms');
  const onError = options.onInternalError ?? (() => {});
  const fanout = new ChangeFeed(onError);
  let registry: Registry;
  if (/^postgres(ql)?:/i.test(location)) {
    const checked = checkDatabaseUrl(location);
    if (!checked.ok) throw new TypeError(`database URL ${checked.message}`);
    registry = await openPostgresRegistry({ url: location, schema: options.postgres?.schema ?? null }, options, fanout, onError);
  } else {
    let runner: Runner;
    try {
      runner = openSqlite(location, options.clock);
    } catch (e) {
      throw e instanceof TypeError ? e : toRegistryError(e);
    }
    registry = new Registry(runner, options.clock, fanout, new InProcessFeed(fanout));
  }
  try {
    if (options.resetSessions !== false) await registry.status.resetSessions();
  } catch (e) {
    await registry.close().catch(() => undefined);
    throw e;
  }
  return registry;
}

async function openPostgresRegistry(target: PostgresTarget, options: RegistryOptions, fanout: ChangeFeed, onError: (err: unknown) => void): Promise<Registry> {
  const config = clientConfig(target, 'feed');
  const pool = openPool(target, options.postgres?.poolSize ?? 10, onError);
  let feed: PostgresFeed | null = null;
  try {
    await migratePostgres(pool, options.clock, target.schema);
    feed = new PostgresFeed({ config, channel: feedChannel(target.schema), fanout, pool, timings: options.postgres?.feed, onError });
    await feed.start();
    return new Registry(postgresRunner(pool), options.clock, fanout, feed);
  } catch (e) {
    await feed?.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    throw e instanceof TypeError ? e : toRegistryError(e);
  }
}
