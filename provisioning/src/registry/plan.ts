/**
 * Registry operations written once for both backends (docs/architecture.md §The registry).
 *
 * An operation is a **plan**: a generator that yields queries and receives their results. It holds
 * the business rules (what to check, what to write, which change to emit) and never touches a
 * connection. A runner executes it:
 * - SQLite (`sqlite-runner.ts`) drives it synchronously inside one `BEGIN IMMEDIATE` transaction,
 *   so nothing else can interleave, exactly as a synchronous better-sqlite3 call;
 * - PostgreSQL (`postgres-runner.ts`) awaits each query on one pooled client inside
 *   `BEGIN ISOLATION LEVEL SERIALIZABLE … COMMIT`, and runs the plan again on a serialization failure.
 *
 * Rules for plans: a plan may run more than once (PostgreSQL retries), so it has no effect outside
 * its queries except through `WriteTx` (changes, audit); a failed statement ends the plan (PostgreSQL
 * aborts the transaction), so a plan never catches a database error: it asks with
 * `ON CONFLICT DO NOTHING` and row counts instead.
 *
 * @example
 * ```ts
 * function* exists(id: string): Plan<boolean> {
 *   return (yield* get(sql`SELECT 1 FROM devices WHERE id = ?`, id)) !== undefined;
 * }
 * ```
 */

export type Dialect = 'sqlite' | 'postgres';

/** SQL text per dialect, with `?` placeholders on both (the PostgreSQL runner numbers them `$1…$n`). */
export interface SqlText {
  readonly sqlite: string;
  readonly postgres: string;
}

/** A piece of SQL that differs between the dialects (see `D`). */
export interface DialectPart {
  readonly sqlite: string;
  readonly postgres: string;
}

export type QueryMode = 'get' | 'all' | 'run';

export interface Query {
  readonly sql: SqlText;
  readonly params: readonly unknown[];
  readonly mode: QueryMode;
}

/** An operation returning `T`: yields queries, receives a row (`get`), rows (`all`) or a change count (`run`). */
export type Plan<T> = Generator<Query, T, unknown>;

/**
 * SQL written once with `?` placeholders; `${D.part}` inserts what differs (or another `sql` text).
 * Our SQL never has a `?` inside a literal.
 */
export function sql(strings: TemplateStringsArray, ...parts: DialectPart[]): SqlText {
  let sqlite = '';
  let postgres = '';
  strings.forEach((s, i) => {
    sqlite += s;
    postgres += s;
    const part = parts[i];
    if (part !== undefined) {
      sqlite += part.sqlite;
      postgres += part.postgres;
    }
  });
  return { sqlite, postgres };
}

/** The same piece on both dialects: a trusted constant (a column list, a subquery) inserted into `sql`. */
export function same(text: string): DialectPart {
  return { sqlite: text, postgres: text };
}

/** `?` → `$1…$n`, in order. */
export function toDollarParams(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/** The places where the dialects differ, named once. */
export const D = {
  /** the larger of two values: SQLite's scalar `max(a, b)` */
  greatest: { sqlite: 'max', postgres: 'GREATEST' },
  /** a tiebreak in insertion order: SQLite's rowid, PostgreSQL's `ord bigserial` column */
  insertionOrder: { sqlite: 'rowid', postgres: 'ord' },
  /** a boolean literal (SQLite stores 0/1) */
  false: { sqlite: '0', postgres: 'false' },
  true: { sqlite: '1', postgres: 'true' },
} as const satisfies Record<string, DialectPart>;

/** The first row, or undefined. */
export function* get<T>(text: SqlText, ...params: unknown[]): Plan<T | undefined> {
  return (yield { sql: text, params, mode: 'get' }) as T | undefined;
}

/** Every row. */
export function* all<T>(text: SqlText, ...params: unknown[]): Plan<T[]> {
  return (yield { sql: text, params, mode: 'all' }) as T[];
}

/** Runs a statement; resolves the number of rows it changed. */
export function* run(text: SqlText, ...params: unknown[]): Plan<number> {
  return (yield { sql: text, params, mode: 'run' }) as number;
}

/** The first column of the first row, or undefined. */
export function* value<T>(text: SqlText, ...params: unknown[]): Plan<T | undefined> {
  const row = yield* get<Record<string, unknown>>(text, ...params);
  if (row === undefined) return undefined;
  for (const key in row) return row[key] as T;
  return undefined;
}

/** A plan that only returns `v` (for a branch that needs no query). */
// eslint-disable-next-line require-yield
export function* done<T>(v: T): Plan<T> {
  return v;
}

/** Row mappers absorb the type differences: a boolean column is 0/1 on SQLite, a boolean on PostgreSQL. */
export function bool(v: unknown): boolean {
  return v === true || v === 1;
}

/**
 * A JSON column. Both dialects hand back its text (PostgreSQL's `json` keeps the text as given, and
 * the PostgreSQL runner's type parsers leave it unparsed), so a stored JSON string is never parsed twice.
 */
export function json<T>(v: unknown): T {
  return JSON.parse(v as string) as T;
}
