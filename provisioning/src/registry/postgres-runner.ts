import pg from 'pg';
import { toDollarParams, type Query } from './plan.ts';
import { driveAsync, type Runner } from './runner.ts';

const OID_INT8 = 20;
const OID_JSON = 114;
const OID_JSONB = 3802;

/**
 * `int8` (bigint, count(*), bigserial) as a JS number. Every int8 the registry stores is an epoch-ms
 * time, a count or a sequence number, all far below 2^53; a value beyond it is refused (the query
 * rejects), never silently rounded.
 */
export function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value beyond 2^53 (${text.length} digits)`);
  return n;
}

/**
 * The registry's type parsers, per pool (pg's global parsers stay untouched): int8 as a checked
 * number; `json`/`jsonb` as text, so the row mappers parse every JSON column the same way on both
 * dialects (plan.ts `json`).
 */
export const PG_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary') {
      if (oid === OID_INT8) return parseInt8;
      if (oid === OID_JSON || oid === OID_JSONB) return (text: string) => text;
    }
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** SQLSTATEs after which the whole transaction is simply run again (SERIALIZABLE, deadlock). */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 10;

/** An error of the connection itself (not a SQLSTATE): the client is not reused. */
function connectionBroken(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return !(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code));
}

function bindable(p: unknown): unknown {
  if (p instanceof Uint8Array && !Buffer.isBuffer(p)) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  return p;
}

/** Each statement's `$n` text, computed once. */
const numbered = new Map<string, string>();

async function exec(client: pg.PoolClient, q: Query): Promise<unknown> {
  let text = numbered.get(q.sql.postgres);
  if (text === undefined) {
    text = toDollarParams(q.sql.postgres);
    numbered.set(q.sql.postgres, text);
  }
  const r = await client.query(text, q.params.map(bindable));
  if (q.mode === 'get') return r.rows[0];
  if (q.mode === 'all') return r.rows;
  return r.rowCount ?? 0;
}

/**
 * The PostgreSQL runner. A write runs on one pooled client in `BEGIN ISOLATION LEVEL SERIALIZABLE …
 * COMMIT`: a plan reads, decides and writes as if alone, like SQLite's single writer; when
 * PostgreSQL reports a serialization failure or a deadlock the plan runs again from the start
 * (up to 10 attempts, with a short random pause). A read runs its queries on one pooled client
 * without a transaction.
 */
export function postgresRunner(pool: pg.Pool, random: () => number = Math.random): Runner {
  let open = true;
  async function withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: unknown;
    // A checked-out client has no pool listener: a server shutdown between two of its queries
    // would be an unhandled 'error' event, which ends the process. The client is then discarded.
    const onError = (e: unknown): void => {
      broken ??= e;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (e) {
      if (connectionBroken(e)) broken ??= e;
      throw e;
    } finally {
      client.removeListener('error', onError);
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
    }
  }
  return {
    dialect: 'postgres',
    async write(plan) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await withClient(async (client) => {
            await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
            try {
              const result = await driveAsync(plan(), (q) => exec(client, q));
              await client.query('COMMIT');
              return result;
            } catch (e) {
              await client.query('ROLLBACK').catch(() => undefined);
              throw e;
            }
          });
        } catch (e) {
          const code = (e as { code?: unknown } | null)?.code;
          if (attempt >= MAX_ATTEMPTS || typeof code !== 'string' || !RETRYABLE.has(code)) throw e;
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 5 * attempt) + 1));
        }
      }
    },
    read(plan) {
      return withClient((client) => driveAsync(plan(), (q) => exec(client, q)));
    },
    async ping() {
      let timer: NodeJS.Timeout | undefined;
      try {
        const answered = pool.query('SELECT 1').then(() => true);
        const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 2000)));
        return await Promise.race([answered, timedOut]);
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    get open() {
      return open;
    },
    async close() {
      if (!open) return;
      open = false;
      await pool.end();
    },
  };
}

/** Where a PostgreSQL registry lives, for the pool and the change feed's own connection. */
export interface PostgresTarget {
  /** `postgres://` or `postgresql://` URL (its password never reaches a log: `redactDatabaseUrl`) */
  url: string;
  /** a schema to use (created when missing) instead of the role's default `search_path` */
  schema: string | null;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The connection settings of every connection the registry opens (pool and feed alike). `use` names
 * it in `pg_stat_activity`: `latchkey` for the pool, `latchkey-feed` for the change feed's listener,
 * followed by `:<schema>` when one is configured.
 */
export function clientConfig(target: PostgresTarget, use: 'pool' | 'feed' = 'pool'): pg.ClientConfig {
  if (target.schema !== null && !SCHEMA_NAME.test(target.schema)) throw new TypeError('schema must match [a-z_][a-z0-9_]{0,62}');
  return {
    connectionString: target.url,
    types: PG_TYPES,
    application_name: `${use === 'pool' ? 'latchkey' : 'latchkey-feed'}${target.schema === null ? '' : `:${target.schema}`}`,
    keepAlive: true,
    connectionTimeoutMillis: 5000,
    // one statement never holds a connection (and a CONNECT waiting on it) for long
    statement_timeout: 15_000,
    ...(target.schema !== null ? { options: `-c search_path=${target.schema}` } : {}),
  };
}

/**
 * A pool for the registry. An idle client's error (the server restarted) is reported, never an
 * unhandled 'error' event, which would end the process.
 */
export function openPool(target: PostgresTarget, poolSize: number, onError: (err: unknown) => void): pg.Pool {
  if (!Number.isSafeInteger(poolSize) || poolSize < 1 || poolSize > 1000) throw new TypeError('poolSize must be an integer 1..1000');
  const pool = new pg.Pool({ ...clientConfig(target), max: poolSize, idleTimeoutMillis: 30_000 });
  pool.on('error', onError);
  return pool;
}
