import type { Clock } from '@latchkey/device-sdk/protocol';
import type { FeedBackend } from './change-feed.ts';
import { toRegistryError } from './errors.ts';
import { run, sql, type Dialect, type Plan } from './plan.ts';
import type { Runner } from './runner.ts';
import type { NewAuditEntry, RegistryChange } from './types.ts';

/** What a write plan may do besides its queries: read the clock, emit changes, append audit entries. */
export interface WriteTx {
  readonly dialect: Dialect;
  /** the registry clock (epoch ms) */
  now(): number;
  /** queues a change: it commits with the write and reaches the feed's listeners after commit */
  emit(change: RegistryChange): void;
  /** an audit entry, inside the write (it commits or rolls back with it) */
  audit(entry: NewAuditEntry): Plan<void>;
}

const AUDIT_INSERT = sql`INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`;

/**
 * What every store of the registry shares: the runner, the clock and the write discipline (one
 * transaction per operation, audit entries and changes inside it, changes delivered after commit,
 * errors mapped so neither SQLite's nor PostgreSQL's errors leave the registry).
 */
export class RegistryContext {
  readonly clock: Clock;
  readonly #runner: Runner;
  readonly #feed: FeedBackend;

  constructor(runner: Runner, clock: Clock, feed: FeedBackend) {
    this.#runner = runner;
    this.clock = clock;
    this.#feed = feed;
  }

  get dialect(): Dialect {
    return this.#runner.dialect;
  }

  /** Runs a read plan; any failure becomes a RegistryError. */
  async read<T>(plan: () => Plan<T>): Promise<T> {
    try {
      return await this.#runner.read(plan);
    } catch (e) {
      throw toRegistryError(e);
    }
  }

  /**
   * Runs `plan` in one transaction (all-or-nothing). Its changes are written with it (PostgreSQL's
   * outbox) and delivered to this process's listeners before the returned promise resolves.
   */
  async write<T>(plan: (tx: WriteTx) => Plan<T>): Promise<T> {
    let pending: RegistryChange[] = [];
    let seq: number | null = null;
    const feed = this.#feed;
    const clock = this.clock;
    const tx: WriteTx = {
      dialect: this.#runner.dialect,
      now: clock,
      emit: (change) => {
        pending.push(change);
      },
      *audit(entry) {
        yield* run(AUDIT_INSERT, clock(), entry.actor, entry.action, entry.target, JSON.stringify(entry.detail ?? {}));
      },
    };
    function* withChanges(): Plan<T> {
      pending = []; // a retried plan starts over
      seq = null;
      const result = yield* plan(tx);
      if (feed.append !== null && pending.length > 0) seq = yield* feed.append(pending, clock());
      return result;
    }
    let result: T;
    try {
      result = await this.#runner.write(withChanges);
    } catch (e) {
      throw toRegistryError(e);
    }
    if (pending.length > 0) await feed.committed(pending, seq);
    return result;
  }
}
