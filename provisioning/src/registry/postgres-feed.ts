import pg from 'pg';
import type { ChangeFeed, FeedBackend, FeedState } from './change-feed.ts';
import { get, run, sql, type Plan } from './plan.ts';
import type { RegistryChange } from './types.ts';

/**
 * Serializes the writers of the outbox, so that sequence order is commit order. Without it a reader
 * that remembers its last sequence number can skip forever a change whose transaction took a lower
 * number but committed later (test/registry/postgres-feed.test.ts shows it).
 */
const OUTBOX_LOCK = 0x6c6b6665; // 'lkfe'

/** Rows read per query while replaying. */
const PAGE = 1000;

export interface PostgresFeedTimings {
  /** a `SELECT 1` on the feed's connection this often: a half-open TCP connection reports nothing */
  pingMs: number;
  /** a ping unanswered this long counts as a lost connection */
  pingTimeoutMs: number;
  /** a safety poll this often (a notification is a wake-up only; the rows are the truth) */
  pollMs: number;
  /** reconnect backoff, doubling from min to max */
  minRetryMs: number;
  maxRetryMs: number;
  /** how long a write waits for its own changes to reach this process's listeners */
  localDeliveryMs: number;
}

export const DEFAULT_FEED_TIMINGS: PostgresFeedTimings = Object.freeze({
  pingMs: 500,
  pingTimeoutMs: 1000,
  pollMs: 5000,
  minRetryMs: 100,
  maxRetryMs: 1000,
  localDeliveryMs: 1000,
});

interface Waiter {
  seq: number;
  resolve: () => void;
}

/**
 * The change feed on PostgreSQL: an outbox table written in the same transaction as each change
 * (under an advisory transaction lock), `pg_notify` at commit, and a listener on its own connection
 * that replays from its last seen sequence number on every (re)connect.
 *
 * - It starts at the current end: a starting process has no sessions and an empty cache.
 * - It reports `down` when its connection is lost or a ping goes unanswered, and `resynced` once it
 *   is back and has replayed what it missed; `downForMs()` is what the broker's CONNECT gate reads.
 * - When the outbox was pruned past its position (down longer than the retention), it skips to the
 *   end and reports `full_resync` (docs/operations.md §Change feed).
 * - A write resolves after its own changes reached this process's listeners (bounded by
 *   `localDeliveryMs`, and not at all while the feed is down): the local broker has acted on a block
 *   before the HTTP request that made it returns, as on SQLite.
 */
export class PostgresFeed implements FeedBackend {
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  readonly #fanout: ChangeFeed;
  readonly #pool: pg.Pool;
  readonly #t: PostgresFeedTimings;
  readonly #onError: (err: unknown) => void;
  readonly #states = new Set<(state: FeedState) => void>();
  #client: pg.Client | null = null;
  #lastSeq: number | null = null;
  #downSince: number | null = performance.now();
  #draining: Promise<void> | null = null;
  #dirty = false;
  #closed = false;
  #retryMs: number;
  #pingTimer: NodeJS.Timeout | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #waiters: Waiter[] = [];
  #started: { resolve: () => void; reject: (e: unknown) => void } | null = null;

  constructor(o: {
    config: pg.ClientConfig;
    channel: string;
    fanout: ChangeFeed;
    pool: pg.Pool;
    timings?: Partial<PostgresFeedTimings>;
    onError: (err: unknown) => void;
  }) {
    this.#config = o.config;
    this.#channel = o.channel;
    this.#fanout = o.fanout;
    this.#pool = o.pool;
    this.#t = { ...DEFAULT_FEED_TIMINGS, ...o.timings };
    this.#onError = o.onError;
    this.#retryMs = this.#t.minRetryMs;
  }

  /** The last sequence number delivered (null before the first connect). */
  get lastSeq(): number | null {
    return this.#lastSeq;
  }

  /** Connects, LISTENs and reads the current end; resolves once the feed is up (rejects if the first attempt fails). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#started = { resolve, reject };
      void this.#connect();
    });
  }

  readonly append = (changes: readonly RegistryChange[], at: number): Plan<number> => appendChanges(changes, at, this.#channel);

  downForMs(): number {
    return this.#downSince === null ? 0 : Math.max(1, Math.round(performance.now() - this.#downSince));
  }

  onState(listener: (state: FeedState) => void): () => void {
    this.#states.add(listener);
    return () => {
      this.#states.delete(listener);
    };
  }

  async committed(_changes: readonly RegistryChange[], seq: number | null): Promise<void> {
    if (seq === null || this.#downSince !== null) return;
    void this.#drain();
    await this.#reach(seq, this.#t.localDeliveryMs);
  }

  /** Rejects when the feed has not caught up within 5 s (it is down). */
  async sync(): Promise<void> {
    const { rows } = await this.#pool.query<{ s: number }>('SELECT coalesce(max(seq), 0) AS s FROM registry_changes');
    const end = rows[0]?.s ?? 0;
    void this.#drain();
    if (!(await this.#reach(end, 5000))) throw new Error('the change feed did not catch up within 5 s');
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopTimers();
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    for (const w of this.#waiters.splice(0)) w.resolve();
    const client = this.#client;
    this.#client = null;
    if (client !== null) {
      (client as { lkLost?: boolean }).lkLost = true;
      await client.end().catch(() => undefined);
    }
  }

  /** Resolves true once `seq` was delivered, false after `timeoutMs`. */
  #reach(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.#lastSeq !== null && this.#lastSeq >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter: Waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  #delivered(seq: number): void {
    this.#lastSeq = seq;
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) if (w.seq <= seq) w.resolve();
    else still.push(w);
    this.#waiters = still;
  }

  #emit(state: FeedState): void {
    for (const l of [...this.#states]) {
      try {
        l(state);
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(this.#config);
    // without an 'error' listener a server restart ends the process
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('the change feed connection ended')));
    try {
      await client.connect();
      // LISTEN before reading, so nothing committed in between is missed
      await client.query(`LISTEN ${this.#channel}`);
      client.on('notification', () => void this.#drain());
      if (this.#closed) {
        await client.end();
        return;
      }
      const first = this.#lastSeq === null;
      let full = false;
      if (first) {
        const { rows } = await client.query<{ s: number }>('SELECT coalesce(max(seq), 0) AS s FROM registry_changes');
        this.#lastSeq = rows[0]?.s ?? 0;
      } else {
        // the oldest row is never pruned past the newest one (retention keeps the last row)
        const { rows } = await client.query<{ lo: number | null; hi: number | null }>('SELECT min(seq) AS lo, max(seq) AS hi FROM registry_changes');
        const lo = rows[0]?.lo ?? null;
        if (lo !== null && (this.#lastSeq as number) < lo - 1) {
          full = true;
          this.#delivered(rows[0]?.hi as number);
        }
      }
      this.#client = client;
      await this.#drain();
      if (this.#client !== client) throw new Error('the change feed connection was lost while replaying');
      this.#retryMs = this.#t.minRetryMs;
      const wasDown = this.#downSince !== null;
      this.#downSince = null;
      this.#stopTimers();
      this.#pingTimer = setInterval(() => this.#ping(client), this.#t.pingMs);
      this.#pollTimer = setInterval(() => void this.#drain(), this.#t.pollMs);
      this.#pingTimer.unref();
      this.#pollTimer.unref();
      if (this.#started !== null) {
        this.#started.resolve();
        this.#started = null;
      } else if (wasDown) {
        this.#emit(full ? 'full_resync' : 'resynced');
      }
    } catch (err) {
      this.#lost(client, err);
    }
  }

  #stopTimers(): void {
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    if (this.#pollTimer !== null) clearInterval(this.#pollTimer);
    this.#pingTimer = null;
    this.#pollTimer = null;
  }

  #lost(client: pg.Client, err: unknown): void {
    const c = client as pg.Client & { lkLost?: boolean };
    if (c.lkLost === true) return;
    c.lkLost = true;
    if (this.#client === client) this.#client = null;
    this.#stopTimers();
    client.end().catch(() => undefined);
    if (this.#closed) return;
    if (this.#started !== null) {
      this.#started.reject(err);
      this.#started = null;
      return;
    }
    if (this.#downSince === null) {
      this.#downSince = performance.now();
      for (const w of this.#waiters.splice(0)) w.resolve(); // nobody waits on a feed that is down
      this.#onError(Object.assign(new Error('the registry change feed is down; reconnecting'), { cause: err }));
      this.#emit('down');
    }
    const wait = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#t.maxRetryMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, wait);
    this.#retryTimer.unref();
  }

  #ping(client: pg.Client): void {
    let answered = false;
    const timer = setTimeout(() => {
      if (!answered) this.#lost(client, new Error('the change feed connection did not answer a ping'));
    }, this.#t.pingTimeoutMs);
    client.query('SELECT 1').then(
      () => {
        answered = true;
        clearTimeout(timer);
      },
      (err: unknown) => {
        answered = true;
        clearTimeout(timer);
        this.#lost(client, err);
      },
    );
  }

  /** Delivers every row after the last seen one, in order; one drain at a time (a wake-up during one re-runs it). */
  #drain(): Promise<void> {
    if (this.#draining !== null) {
      this.#dirty = true;
      return this.#draining;
    }
    this.#draining = (async () => {
      do {
        this.#dirty = false;
        const client = this.#client;
        if (client === null || this.#lastSeq === null) return;
        const { rows } = await client.query<{ seq: number; change: string }>(
          'SELECT seq, change FROM registry_changes WHERE seq > $1 ORDER BY seq LIMIT $2',
          [this.#lastSeq, PAGE],
        );
        for (const r of rows) {
          this.#fanout.deliver([JSON.parse(r.change) as RegistryChange]);
          this.#delivered(r.seq);
        }
        if (rows.length === PAGE) this.#dirty = true;
      } while (this.#dirty);
    })()
      .catch((err: unknown) => {
        if (this.#client !== null) this.#lost(this.#client, err);
      })
      .finally(() => {
        this.#draining = null;
      });
    return this.#draining;
  }
}

/** The outbox rows of one write, in order, and the wake-up every listener gets at COMMIT. */
function* appendChanges(changes: readonly RegistryChange[], at: number, channel: string): Plan<number> {
  yield* run(sql`SELECT pg_advisory_xact_lock(?)`, OUTBOX_LOCK);
  const row = yield* get<{ seq: number }>(
    sql`WITH added AS (
          INSERT INTO registry_changes (at, change)
          SELECT ?, c.value FROM json_array_elements(?::json) WITH ORDINALITY AS c(value, n) ORDER BY c.n
          RETURNING seq)
        SELECT max(seq) AS seq FROM added`,
    at,
    JSON.stringify(changes),
  );
  yield* run(sql`SELECT pg_notify(?, '')`, channel);
  return row?.seq as number;
}

/** Outbox rows older than `before`, at most `limit` of them; the newest row is always kept (a reconnecting listener's gap check). */
export function* pruneOutbox(before: number, limit: number): Plan<number> {
  return yield* run(
    sql`DELETE FROM registry_changes WHERE seq IN (
          SELECT seq FROM registry_changes WHERE at < ? AND seq < (SELECT max(seq) FROM registry_changes) ORDER BY seq LIMIT ?)`,
    before,
    limit,
  );
}

/** The NOTIFY channel of a registry (one per schema, so registries sharing a database do not wake each other). */
export function feedChannel(schema: string | null): string {
  return schema === null ? 'latchkey_registry_changes' : `lk_changes_${schema}`.slice(0, 63);
}
