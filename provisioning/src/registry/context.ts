import type { Database, Statement } from 'better-sqlite3';
import type { Clock } from '@latchkey/device-sdk/protocol';
import type { ChangeFeed } from './change-feed.ts';
import { toRegistryError } from './errors.ts';
import type { NewAuditEntry, RegistryChange } from './types.ts';

/**
 * What every store of the registry shares: the connection, the clock, cached prepared
 * statements, and the write discipline (one IMMEDIATE transaction per operation, audit entry
 * inside it, change-feed delivery after commit, errors mapped so SQLite never leaks).
 */
export class RegistryContext {
  readonly db: Database;
  readonly clock: Clock;
  readonly #feed: ChangeFeed;
  readonly #statements = new Map<string, Statement>();
  #pending: RegistryChange[] | null = null;

  constructor(db: Database, clock: Clock, feed: ChangeFeed) {
    this.db = db;
    this.clock = clock;
    this.#feed = feed;
  }

  /** A prepared statement, compiled once per connection. */
  stmt(sql: string): Statement {
    let s = this.#statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` in one transaction (all-or-nothing); queued changes are delivered after commit. */
  write<T>(fn: () => T): T {
    if (this.#pending !== null) return fn(); // nested: the outer write commits and delivers
    const pending: RegistryChange[] = [];
    this.#pending = pending;
    let result: T;
    try {
      result = this.db.transaction(fn).immediate();
    } catch (e) {
      throw toRegistryError(e);
    } finally {
      this.#pending = null;
    }
    this.#feed.deliver(pending);
    return result;
  }

  /** Runs a read; any failure becomes a RegistryError. */
  read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw toRegistryError(e);
    }
  }

  /** Queues a change for delivery once the current write commits. */
  emit(change: RegistryChange): void {
    if (this.#pending === null) throw new TypeError('emit() outside write()');
    this.#pending.push(change);
  }

  /** Appends an audit entry (inside the current write, so it commits or rolls back with it). */
  audit(entry: NewAuditEntry): void {
    this.stmt('INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)').run(
      this.clock(),
      entry.actor,
      entry.action,
      entry.target,
      JSON.stringify(entry.detail ?? {}),
    );
  }
}
