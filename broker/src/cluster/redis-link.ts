import { Redis, type RedisOptions } from 'ioredis';

/** What a cluster node's Redis connections report (docs/operations.md §Scaling out). */
export interface RedisHealth {
  /**
   * How long (ms) this node has not been fully connected, or been catching up after a reconnect;
   * 0 while it is. The CONNECT gate refuses new connects (CONNACK 3) past 1 s.
   */
  downForMs(): number;
}

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

/**
 * The Redis connections of one cluster node, each with its own error handler (an unhandled
 * `error` event would end the process; an unreachable Redis must not) and its name in
 * `CLIENT LIST` (`latchkey:<node>:<use>`), and the node's health derived from all of them.
 * ioredis queues commands while a connection is down and replays them after it reconnects;
 * a command still queued after 20 retries (about 20 s) fails.
 *
 * @example
 * ```ts
 * const link = new RedisLink('redis://127.0.0.1:6379', 'node-a', log);
 * const db = link.open('db');
 * link.health.downForMs() // 0 once every connection is ready
 * ```
 */
export class RedisLink {
  readonly #url: string;
  readonly #nodeId: string;
  readonly #log: Log;
  readonly #conns = new Map<Redis, string>();
  /** names not ready now (a connection, or `resync` while the node catches up) */
  readonly #down = new Set<string>();
  #downSince: number | null = null;
  #closing = false;
  readonly health: RedisHealth;

  constructor(url: string, nodeId: string, log: Log) {
    this.#url = url;
    this.#nodeId = nodeId;
    this.#log = log;
    this.health = { downForMs: () => (this.#downSince === null ? 0 : Date.now() - this.#downSince) };
  }

  /**
   * A new connection named `use`, connecting at once. It counts as down until it is ready.
   * `onReconnect` runs on every `ready` after the first.
   */
  open(use: string, onReconnect?: () => void): Redis {
    const name = `${use}#${this.#conns.size}`;
    const options: RedisOptions = {
      connectionName: `latchkey:${this.#nodeId}:${use}`,
      // a failed connection is retried every 100 ms … 1 s: an outage shows at once and ends quickly
      retryStrategy: (attempt) => Math.min(100 * attempt, 1000),
      maxRetriesPerRequest: 20,
    };
    const conn = new Redis(this.#url, options);
    this.#conns.set(conn, name);
    this.#setDown(name, true);
    let readyOnce = false;
    conn.on('ready', () => {
      this.#setDown(name, false);
      if (readyOnce) {
        this.#log.info({ redis: use }, 'reconnected to Redis');
        onReconnect?.();
      }
      readyOnce = true;
    });
    conn.on('close', () => {
      if (!this.#conns.has(conn)) return; // forgotten: closed on purpose
      if (!this.#closing && !this.#down.has(name)) this.#log.warn({ redis: use }, 'lost the connection to Redis');
      this.#setDown(name, true);
    });
    // never the URL: it may carry a password
    conn.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.#closing) this.#log.warn({ redis: use, err: { code: err.code, message: err.message } }, 'Redis connection error');
    });
    return conn;
  }

  /** Holds the node's health down (`true`) while it catches up after a reconnect, or releases it. */
  holdDown(reason: string, held: boolean): void {
    this.#setDown(reason, held);
  }

  /** Resolves once every connection is ready (or rejects after `timeoutMs`). */
  async ready(timeoutMs: number): Promise<void> {
    const started = Date.now();
    while ([...this.#conns.keys()].some((c) => c.status !== 'ready')) {
      if (Date.now() - started > timeoutMs) throw new Error(`Redis is not reachable (waited ${timeoutMs} ms)`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Forgets a connection (it was closed elsewhere, e.g. by the store that owned it). */
  forget(conn: Redis): void {
    const name = this.#conns.get(conn);
    if (name === undefined) return;
    this.#conns.delete(conn);
    this.#setDown(name, false);
  }

  /** Closes every connection still open. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(
      [...this.#conns.keys()].map(async (conn) => {
        try {
          if (conn.status === 'ready') await conn.quit();
          else conn.disconnect();
        } catch {
          conn.disconnect();
        }
      }),
    );
    this.#conns.clear();
  }

  #setDown(name: string, down: boolean): void {
    if (down) {
      this.#down.add(name);
      this.#downSince ??= Date.now();
    } else {
      this.#down.delete(name);
      if (this.#down.size === 0) this.#downSince = null;
    }
  }
}
