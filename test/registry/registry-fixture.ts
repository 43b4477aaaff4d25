/**
 * Real registries on both backends, a controllable clock, and fresh P-256 keys.
 * - SQLite: a file in a temp dir, one per test.
 * - PostgreSQL (LATCHKEY_TEST_DATABASE_URL, test/helpers/services.ts): one schema per test file
 *   (each file runs in its own worker, so this module's state is the file's), emptied before each
 *   test. Without PostgreSQL, `BACKENDS` is only SQLite and the skip is one line; under CI=true
 *   a missing PostgreSQL fails the run.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { parsePublicKey, type ParsedPublicKey } from '@latchkey/device-sdk/protocol';
import { openRegistry, RegistryError, type Registry, type RegistryOptions } from '../../provisioning/src/registry/index.ts';
import { toDollarParams } from '../../provisioning/src/registry/plan.ts';
import { requireService } from '../helpers/services.ts';

/** Real time at load, so certificates made by openssl now are valid at T0. */
export const T0 = Math.floor(Date.now() / 1000) * 1000;

export interface TestClock {
  (): number;
  now: number;
  advance(ms: number): void;
}

export function testClock(start = T0): TestClock {
  const clock = (() => clock.now) as TestClock;
  clock.now = start;
  clock.advance = (ms) => {
    clock.now += ms;
  };
  return clock;
}

export type BackendName = 'sqlite' | 'postgres';

const postgres = requireService('postgres');

/** The backends this run tests the registry on: SQLite always, PostgreSQL when available (or required by CI). */
export const BACKENDS: readonly BackendName[] = postgres.skip ? ['sqlite'] : ['sqlite', 'postgres'];

/** The tables a test may have filled (emptied before each PostgreSQL test but the file's first). */
const TABLES = ['devices', 'services', 'enrollment_tokens', 'audit_log', 'registry_changes'];

let fileSchema: string | null = null;
/** this file's schema exists (a registry was opened on it) */
let migrated = false;
/** fixtures open on this file's schema (a fixture opened while another is open gets a schema of its own) */
let openOnFileSchema = 0;

const newSchema = (): string => `t_${randomBytes(6).toString('hex')}`;

/** This test file's PostgreSQL schema: its URL and name (created by the registry's first migration). */
export function postgresTarget(): { url: string; schema: string } {
  fileSchema ??= newSchema();
  return { url: postgres.assertPresent(), schema: fileSchema };
}

/** Runs `fn` with a plain pg client on this file's schema, or `schema` (for raw checks a test makes). */
export async function withPostgres<T>(fn: (client: pg.Client) => Promise<T>, schema = postgresTarget().schema): Promise<T> {
  const { url } = postgresTarget();
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface RegistryFixture {
  backend: BackendName;
  /** SQLite: the temp dir and the database file; PostgreSQL: a temp dir and '' */
  dir: string;
  file: string;
  /** what `openRegistry` was given: the SQLite path or the PostgreSQL URL */
  location: string;
  clock: TestClock;
  registry: Registry;
  /** the options every open of this fixture uses (PostgreSQL: its schema) */
  options(more?: Partial<RegistryOptions>): RegistryOptions;
  reopen(opts?: Partial<RegistryOptions>): Promise<Registry>;
  /** rows of a raw query beside the registry (SQL valid on both dialects, `?` placeholders) */
  rows(sql: string, ...params: unknown[]): Promise<Record<string, unknown>[]>;
  /** the first column of the first row of a raw query, as a number (e.g. a count) */
  count(sql: string, ...params: unknown[]): Promise<number>;
  /** raw statements in one transaction, each run once per parameter list (fast bulk inserts) */
  exec(sql: string, paramLists?: readonly unknown[][]): Promise<void>;
  cleanup(): Promise<void>;
}

export async function registryFixture(backend: BackendName = 'sqlite', opts: Partial<RegistryOptions> = {}): Promise<RegistryFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-registry-'));
  const clock = testClock();
  let file = '';
  let location: string;
  let base: Partial<RegistryOptions>;
  let released = (): void => {};
  let pgSchema: string | undefined;
  if (backend === 'sqlite') {
    file = path.join(dir, 'latchkey.db');
    location = file;
    base = {};
  } else {
    const fileTarget = postgresTarget();
    const shared = openOnFileSchema === 0;
    const schema = shared ? fileTarget.schema : newSchema();
    pgSchema = schema;
    location = fileTarget.url;
    // fast reconnects: the restart tests wait on them
    base = { postgres: { schema, feed: { minRetryMs: 50, maxRetryMs: 250 } } };
    if (shared) {
      if (migrated) {
        // DELETE, not TRUNCATE: on tables this small it is ten times faster
        await withPostgres((c) => c.query(TABLES.map((t) => `DELETE FROM ${t};`).join(' ')));
      }
      migrated = true;
      openOnFileSchema++;
      released = () => {
        openOnFileSchema--;
      };
    }
  }
  const options = (more: Partial<RegistryOptions> = {}): RegistryOptions => ({ clock, ...base, ...opts, ...more });
  // PostgreSQL: one connection for the test's raw queries (a connection per query costs ~50 ms under load)
  let raw: Promise<pg.Client> | null = null;
  const rawClient = (): Promise<pg.Client> => {
    raw ??= (async () => {
      const c = new pg.Client({ connectionString: location, options: `-c search_path=${pgSchema}` });
      c.on('error', () => undefined); // a restart test may stop the server under it
      await c.connect();
      return c;
    })();
    return raw;
  };
  const fx: RegistryFixture = {
    backend,
    dir,
    file,
    location,
    clock,
    registry: await openRegistry(location, options()),
    options,
    async rows(sql, ...params) {
      if (backend === 'postgres') return (await (await rawClient()).query(toDollarParams(sql), params)).rows;
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare(sql).all(...params) as Record<string, unknown>[];
      } finally {
        db.close();
      }
    },
    async count(sql, ...params) {
      const row = (await fx.rows(sql, ...params))[0];
      return Number(row === undefined ? Number.NaN : Object.values(row)[0]);
    },
    async exec(sql, paramLists = [[]]) {
      if (backend === 'postgres') {
        const c = await rawClient();
        await c.query('BEGIN');
        try {
          for (const params of paramLists) await c.query(toDollarParams(sql), params);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
        return;
      }
      const db = new Database(file);
      try {
        const stmt = db.prepare(sql);
        db.transaction(() => {
          for (const params of paramLists) stmt.run(...params);
        })();
      } finally {
        db.close();
      }
    },
    async reopen(more = {}) {
      await fx.registry.close();
      fx.registry = await openRegistry(location, options(more));
      return fx.registry;
    },
    async cleanup() {
      await fx.registry.close();
      if (raw !== null) await (await raw).end().catch(() => undefined);
      raw = null;
      released();
      released = () => {};
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

export interface TestKey {
  publicKey: KeyObject;
  pem: string;
  parsed: ParsedPublicKey;
}

export function newKey(): TestKey {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  return { publicKey, pem, parsed: parsePublicKey(pem) };
}

/** The `code` of the RegistryError `fn` rejects with; any other error is rethrown, none fails the test. */
export async function registryErrorCode(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof RegistryError) return e.code;
    throw e;
  }
  throw new Error('expected a RegistryError');
}
