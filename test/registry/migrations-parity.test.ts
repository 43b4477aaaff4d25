/**
 * The two dialects' migration lists stay one schema (docs/architecture.md §The registry):
 * the same (version, name) pairs, and once applied the same tables, columns and named indexes,
 * types aside, but for what only PostgreSQL has.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, POSTGRES_MIGRATIONS } from '../../provisioning/src/registry/index.ts';
import { BACKENDS, registryFixture, withPostgres, postgresTarget, type RegistryFixture } from './registry-fixture.ts';

/** What exists only on PostgreSQL, and why (docs/architecture.md). */
const POSTGRES_ONLY = [
  'credentials.ord', // SQLite's rowid: the tiebreak of credentials in insertion order
  'registry_changes', // the change feed's outbox (SQLite's feed is in-process)
  'registry_changes.seq',
  'registry_changes.at',
  'registry_changes.change',
  'index registry_changes_by_at',
];

describe('migration lists', () => {
  it('have the same versions and names on both dialects, in order, without gaps', () => {
    const pairs = (list: typeof MIGRATIONS) => list.map((m) => [m.version, m.name]);
    expect(pairs(POSTGRES_MIGRATIONS)).toEqual(pairs(MIGRATIONS));
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });
});

describe.runIf(BACKENDS.includes('postgres'))('the migrated schemas', () => {
  let sqlite: RegistryFixture;
  beforeAll(async () => {
    sqlite = await registryFixture('sqlite');
    const pg = await registryFixture('postgres');
    await pg.cleanup();
  });
  afterAll(() => sqlite.cleanup());

  it('have the same tables, columns and indexes but for the PostgreSQL-only ones', async () => {
    const db = new Database(sqlite.file, { readonly: true });
    const fromSqlite = new Set<string>();
    try {
      for (const table of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[]) {
        fromSqlite.add(table);
        for (const col of db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]) fromSqlite.add(`${table}.${col}`);
      }
      for (const index of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL").pluck().all() as string[]) fromSqlite.add(`index ${index}`);
    } finally {
      db.close();
    }
    const { schema } = postgresTarget();
    const fromPostgres = await withPostgres(async (c) => {
      const out = new Set<string>();
      for (const r of (await c.query('SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1', [schema])).rows) {
        out.add(r.table_name);
        out.add(`${r.table_name}.${r.column_name}`);
      }
      // named indexes only: the primary keys' and UNIQUE constraints' own are implicit on SQLite
      for (const r of (await c.query("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'", [schema])).rows) {
        out.add(`index ${r.indexname}`);
      }
      return out;
    });
    expect(fromSqlite.size).toBeGreaterThan(50); // the comparison sees the schema
    expect([...fromPostgres].filter((n) => !POSTGRES_ONLY.includes(n)).sort()).toEqual([...fromSqlite].sort());
    expect(POSTGRES_ONLY.filter((n) => !fromPostgres.has(n))).toEqual([]);
  });
});
