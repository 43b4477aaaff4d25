import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { parsePrincipal, type Clock } from '@latchkey/device-sdk/protocol';
import { AuditStore } from './audit.ts';
import { ChangeFeed } from './change-feed.ts';
import { ConfigStateStore } from './config-state.ts';
import { RegistryContext } from './context.ts';
import { CredentialStore } from './credentials.ts';
import { DeviceStore } from './devices.ts';
import { EnrollmentStore } from './enrollment.ts';
import { GcpStore } from './gcp-store.ts';
import { FleetStats } from './fleet-stats.ts';
import { toRegistryError } from './errors.ts';
import { migrate } from './migrations.ts';
import { RetentionStore } from './retention.ts';
import { ServiceStore } from './services.ts';
import { StatusStore, type SessionEvent } from './status.ts';
import type { AuthFailure, PrincipalRecord, RegistryChange, ServiceAcl } from './types.ts';

/** A principal's row (`found`: a device's `blocked`, a service's `acl`; null when unknown) with one credential, or none. */
interface PrincipalRow {
  found: number | string | null;
  kid: string | null;
  spki_der: Buffer | null;
  expires_at: number | null;
}
const principalQuery = (table: string, key: string, found: string) => `
  SELECT p.${found} AS found, c.kid AS kid, c.spki_der AS spki_der, c.expires_at AS expires_at
  FROM (SELECT ? AS key, ? AS principal) AS q
  LEFT JOIN ${table} AS p ON p.${key} = q.key
  LEFT JOIN credentials AS c ON c.principal = q.principal
  ORDER BY c.created_at, c.rowid`;
const DEVICE_PRINCIPAL = principalQuery('devices', 'id', 'blocked');
const SERVICE_PRINCIPAL = principalQuery('services', 'name', 'acl');

export interface RegistryOptions {
  /** epoch ms; every stored time comes from it */
  clock: Clock;
  /** told about listener exceptions and swallowed write failures of the broker-facing methods */
  onInternalError?: (err: unknown) => void;
  /** zero every device's live-session count at open (default true: no session survives a restart) */
  resetSessions?: boolean;
}

/**
 * The device registry on one SQLite file: the only code that speaks SQL. Structurally implements
 * the broker's `BrokerRegistryPort` (findPrincipal, onChange, record*, saveState).
 *
 * @example
 * ```ts
 * const registry = openRegistry('./data/latchkey.db', { clock: Date.now });
 * registry.devices.create({ id: 'thermo-1', key: parsePublicKey(pem, Date.now()) }, 'admin');
 * registry.close();
 * ```
 */
export class Registry {
  readonly devices: DeviceStore;
  readonly services: ServiceStore;
  readonly enrollment: EnrollmentStore;
  readonly configState: ConfigStateStore;
  readonly status: StatusStore;
  readonly audit: AuditStore;
  readonly retention: RetentionStore;
  /** Cloud IoT Core bindings, raw configs and the import */
  readonly gcp: GcpStore;
  /** read-only fleet figures (connected count, statuses, refusals by minute) */
  readonly stats: FleetStats;
  readonly #db: Db;
  readonly #ctx: RegistryContext;
  readonly #credentials: CredentialStore;
  readonly #feed: ChangeFeed;
  readonly #onInternalError: (err: unknown) => void;

  constructor(db: Db, options: RegistryOptions) {
    this.#db = db;
    this.#onInternalError = options.onInternalError ?? (() => {});
    this.#feed = new ChangeFeed(this.#onInternalError);
    this.#ctx = new RegistryContext(db, options.clock, this.#feed);
    this.#credentials = new CredentialStore(this.#ctx);
    this.devices = new DeviceStore(this.#ctx, this.#credentials);
    this.services = new ServiceStore(this.#ctx, this.#credentials);
    this.enrollment = new EnrollmentStore(this.#ctx, this.devices);
    this.configState = new ConfigStateStore(this.#ctx);
    this.status = new StatusStore(this.#ctx);
    this.audit = new AuditStore(this.#ctx);
    this.retention = new RetentionStore(this.#ctx);
    this.gcp = new GcpStore(this.#ctx, this.#credentials);
    this.stats = new FleetStats(this.#ctx);
  }

  /**
   * The principal (device id or `svc:{name}`) with its credentials, or null. Never throws.
   * One statement, the same for a known and an unknown id (issue 16: the lookup's cost must not
   * tell whether an id exists): both probe the principal's row and its credentials' index.
   */
  findPrincipal(principal: string): PrincipalRecord | null {
    try {
      // parsePrincipal: the protocol core's one reading of `svc:`; a query either way (constant work)
      const named = parsePrincipal(principal);
      const service = named?.kind === 'service' ? named.serviceName : null;
      const rows = this.#ctx.stmt(service !== null ? SERVICE_PRINCIPAL : DEVICE_PRINCIPAL).all(service ?? principal, principal) as PrincipalRow[];
      // asked for a known and an unknown device alike (constant work)
      const gcp = service === null ? this.gcp.binding(principal) : null;
      const first = rows[0];
      if (first === undefined || first.found === null) return null;
      const credentials = rows
        .filter((r) => r.kid !== null)
        .map((r) => ({ kid: r.kid as string, spkiDer: new Uint8Array(r.spki_der as Buffer), expiresAt: r.expires_at }));
      return service !== null
        ? { kind: 'service', principal, blocked: false, acl: JSON.parse(first.found as string) as ServiceAcl, credentials }
        : { kind: 'device', principal, blocked: first.found === 1, acl: null, credentials, ...(gcp === null ? {} : { gcp }) };
    } catch (e) {
      this.#onInternalError(toRegistryError(e));
      return null;
    }
  }

  /** Subscribes to changes committed from now on; returns the unsubscribe function. */
  onChange(listener: (change: RegistryChange) => void): () => void {
    return this.#feed.subscribe(listener);
  }

  recordConnected(deviceId: string, at: number): void {
    this.#quietly(() => this.status.connected(deviceId, at));
  }

  recordDisconnected(deviceId: string, at: number): void {
    this.#quietly(() => this.status.disconnected(deviceId, at));
  }

  /**
   * The broker's batched session events (BrokerRegistryPort.recordSessionEvents): one
   * transaction for the whole batch, same semantics as recordConnected/recordDisconnected per
   * event. A malformed batch is caller misuse: TypeError, nothing written.
   *
   * @example
   * ```ts
   * registry.recordSessionEvents([{ deviceId: 'thermo-1', type: 'connected', at: Date.now() }]);
   * ```
   */
  recordSessionEvents(events: ReadonlyArray<SessionEvent>): void {
    if (!Array.isArray(events)) throw new TypeError('events must be an array');
    for (const e of events as ReadonlyArray<Partial<SessionEvent> | null>) {
      if (e === null || typeof e !== 'object' || typeof e.deviceId !== 'string' || (e.type !== 'connected' && e.type !== 'disconnected') || !Number.isFinite(e.at)) {
        throw new TypeError('each event must be { deviceId: string, type: "connected" | "disconnected", at: epoch ms }');
      }
    }
    this.#quietly(() => this.status.sessionEvents(events));
  }

  recordSeen(entries: ReadonlyArray<readonly [deviceId: string, at: number]>): void {
    this.#quietly(() => this.status.seen(entries));
  }

  recordAuthFailure(failure: AuthFailure): void {
    this.#quietly(() => this.status.authFailure(failure));
  }

  recordLastErrors(entries: ReadonlyArray<readonly [deviceId: string, code: string, at: number]>): void {
    this.#quietly(() => this.status.lastErrors(entries));
  }

  saveState(deviceId: string, stateJson: string, at: number): void {
    this.#quietly(() => this.configState.saveState(deviceId, stateJson, at));
  }

  /** BrokerRegistryPort.deviceIdOfNumId: the device imported with this Cloud IoT Core numId, or null. Never throws. */
  deviceIdOfNumId(numId: string): string | null {
    try {
      return this.gcp.deviceIdOfNumId(numId);
    } catch (e) {
      this.#onInternalError(toRegistryError(e));
      return null;
    }
  }

  /** BrokerRegistryPort.findGcpConfig: the latest config as raw bytes, or null. Never throws. */
  findGcpConfig(deviceId: string): { version: number; data: Buffer } | null {
    try {
      return this.gcp.config(deviceId);
    } catch (e) {
      this.#onInternalError(toRegistryError(e));
      return null;
    }
  }

  /** BrokerRegistryPort.recordConfigAck: the device PUBACKed this config version. */
  recordConfigAck(deviceId: string, version: number, at: number): void {
    this.#quietly(() => this.gcp.recordConfigAck(deviceId, version, at));
  }

  /** For readiness probes: true when the database answers and passes a quick check. */
  ping(): boolean {
    try {
      return this.#db.prepare('PRAGMA quick_check').pluck().get() === 'ok';
    } catch {
      return false;
    }
  }

  get open(): boolean {
    return this.#db.open;
  }

  /** Closes the database (idempotent). */
  close(): void {
    if (this.#db.open) this.#db.close();
  }

  /** The broker-facing writes must not throw into aedes hooks: failures are reported, not raised. */
  #quietly(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#onInternalError(e);
    }
  }
}

/**
 * Opens (creating if needed) the registry at `path` (`:memory:` works too), in WAL mode with
 * foreign keys on, and migrates it to the newest schema.
 */
export function openRegistry(path: string, options: RegistryOptions): Registry {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('registry path must be a non-empty string');
  if (typeof options?.clock !== 'function') throw new TypeError('options.clock must be a function returning epoch ms');
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    migrate(db, options.clock);
    const registry = new Registry(db, options);
    if (options.resetSessions !== false) registry.status.resetSessions();
    return registry;
  } catch (e) {
    db.close();
    throw e instanceof TypeError ? e : toRegistryError(e);
  }
}
