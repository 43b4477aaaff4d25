import type pg from 'pg';
import type { Migration } from './migrations.ts';

/**
 * The PostgreSQL schema, migration by migration: the same versions and names as SQLite's list
 * (migrations.ts; test/registry/migrations-parity.test.ts compares them, and the tables and columns
 * they produce). Types: `boolean`, `json` (kept as given, like SQLite's text), `bytea`, `bigint`
 * epoch-ms times, `bigserial` sequences. Text keys use the "C" collation, so ids sort byte by byte
 * as SQLite sorts them (keyset paging gives the same pages on both). PostgreSQL-only:
 * `credentials.ord` (SQLite's rowid) and `registry_changes`, the change feed's outbox.
 * Never edit a shipped migration: append a new one, to both lists.
 */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE devices (
        id         text COLLATE "C" PRIMARY KEY,
        blocked    boolean NOT NULL DEFAULT false,
        metadata   json NOT NULL DEFAULT '{}',
        created_at bigint NOT NULL
      );

      CREATE TABLE services (
        name       text COLLATE "C" PRIMARY KEY,
        acl        json NOT NULL,
        created_at bigint NOT NULL
      );

      CREATE TABLE credentials (
        kid          text COLLATE "C" PRIMARY KEY,
        ord          bigserial NOT NULL,
        principal    text COLLATE "C" NOT NULL,
        device_id    text COLLATE "C" REFERENCES devices(id) ON DELETE CASCADE,
        service_name text COLLATE "C" REFERENCES services(name) ON DELETE CASCADE,
        fingerprint  text COLLATE "C" NOT NULL UNIQUE,
        spki_der     bytea NOT NULL,
        created_at   bigint NOT NULL,
        expires_at   bigint,
        CHECK ((device_id IS NULL) <> (service_name IS NULL))
      );
      CREATE INDEX credentials_by_principal ON credentials(principal);
      CREATE INDEX credentials_by_device ON credentials(device_id);
      CREATE INDEX credentials_by_service ON credentials(service_name);

      CREATE TABLE enrollment_tokens (
        id          text COLLATE "C" PRIMARY KEY,
        secret_hash bytea NOT NULL,
        uses_total  integer NOT NULL CHECK (uses_total >= 1),
        uses_left   integer NOT NULL CHECK (uses_left >= 0),
        expires_at  bigint NOT NULL,
        id_pattern  text,
        metadata    json NOT NULL DEFAULT '{}',
        created_at  bigint NOT NULL
      );

      CREATE TABLE device_config (
        device_id  text COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        version    integer NOT NULL,
        config     json NOT NULL,
        updated_at bigint NOT NULL
      );

      CREATE TABLE device_state (
        device_id   text COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        state       json NOT NULL,
        reported_at bigint NOT NULL
      );

      CREATE TABLE device_status (
        device_id            text COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        sessions             integer NOT NULL DEFAULT 0 CHECK (sessions >= 0),
        last_connected_at    bigint,
        last_disconnected_at bigint,
        last_seen_at         bigint,
        last_error_code      text,
        last_error_at        bigint
      );

      CREATE TABLE audit_log (
        seq    bigserial PRIMARY KEY,
        at     bigint NOT NULL,
        actor  text NOT NULL,
        action text COLLATE "C" NOT NULL,
        target text COLLATE "C",
        detail json NOT NULL DEFAULT '{}'
      );
      CREATE INDEX audit_by_target ON audit_log(target, seq);

      -- the change feed (docs/operations.md §Change feed): written in the transaction of the change
      CREATE TABLE registry_changes (
        seq    bigserial PRIMARY KEY,
        at     bigint NOT NULL,
        change json NOT NULL
      );
      CREATE INDEX registry_changes_by_at ON registry_changes(at);
    `,
  },
  {
    version: 2,
    name: 'keyset paging of enrollment tokens; retention',
    sql: `
      CREATE INDEX enrollment_tokens_by_created ON enrollment_tokens(created_at, id);
      CREATE INDEX enrollment_tokens_by_expiry ON enrollment_tokens(expires_at);
      CREATE INDEX audit_by_at ON audit_log(at);
      CREATE INDEX audit_by_action ON audit_log(action, seq);
    `,
  },
  {
    version: 3,
    name: 'console indexes',
    // the same partial indexes as SQLite's (device-query.ts walks them in id order)
    sql: `
      CREATE INDEX device_status_connected ON device_status(device_id) WHERE sessions > 0;
      CREATE INDEX device_status_refused ON device_status(device_id) WHERE last_error_code IS NOT NULL;
      CREATE INDEX devices_blocked ON devices(id) WHERE blocked;
      CREATE INDEX audit_by_action_at ON audit_log(action, at);
    `,
  },
  {
    version: 4,
    name: 'credential usage and key history',
    sql: `
      ALTER TABLE credentials ADD COLUMN last_connect_at bigint;
      ALTER TABLE credentials ADD COLUMN last_message_at bigint;
      CREATE TABLE credential_history (
        kid             text COLLATE "C" PRIMARY KEY,
        principal       text COLLATE "C" NOT NULL,
        device_id       text COLLATE "C" REFERENCES devices(id) ON DELETE CASCADE,
        service_name    text COLLATE "C" REFERENCES services(name) ON DELETE CASCADE,
        fingerprint     text COLLATE "C" NOT NULL,
        spki_der        bytea NOT NULL,
        created_at      bigint NOT NULL,
        expires_at      bigint,
        removed_at      bigint NOT NULL,
        last_connect_at bigint,
        last_message_at bigint,
        CHECK ((device_id IS NULL) <> (service_name IS NULL))
      );
      CREATE INDEX credential_history_by_principal ON credential_history(principal);
      CREATE INDEX credential_history_by_device ON credential_history(device_id);
      CREATE INDEX credential_history_by_service ON credential_history(service_name);
    `,
  },
  {
    version: 5,
    name: 'Cloud IoT Core bindings, raw config bytes and config acks',
    // the same as SQLite's (migrations.ts); numId is text: an unsigned 64-bit integer does not fit bigint
    sql: `
      CREATE TABLE gcp_devices (
        device_id text COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        project   text NOT NULL,
        location  text NOT NULL,
        registry  text NOT NULL,
        num_id    text COLLATE "C" NOT NULL UNIQUE
      );
      ALTER TABLE device_config ADD COLUMN data bytea;
      ALTER TABLE device_config ADD COLUMN device_ack_at bigint;
    `,
  },
];

/** Held while migrating: several nodes starting at once migrate once, the others wait and find it done. */
const MIGRATION_LOCK = 0x6c6b6d67; // 'lkmg'

/**
 * Brings a PostgreSQL database (or `schema`, created when missing) up to the newest migration, under
 * a session advisory lock. Each migration runs in its own transaction with its `schema_migrations`
 * row (PostgreSQL's DDL is transactional). Throws TypeError for a schema written by a newer latchkey.
 */
export async function migratePostgres(
  pool: pg.Pool,
  clock: () => number,
  schema: string | null,
  migrations: readonly Migration[] = POSTGRES_MIGRATIONS,
): Promise<number> {
  const c = await pool.connect();
  let broken = false;
  // a checked-out client has no pool listener: a server shutdown must not be an unhandled 'error'
  const onError = (): void => {
    broken = true;
  };
  c.on('error', onError);
  try {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      if (schema !== null) await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`); // checked: [a-z_][a-z0-9_]*
      await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at bigint NOT NULL
      )`);
      const applied = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      const newest = Math.max(0, ...migrations.map((m) => m.version));
      for (const v of applied) {
        if (v > newest) throw new TypeError(`database schema version ${v} is newer than this latchkey (${newest})`);
      }
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (applied.has(m.version)) continue;
        await c.query('BEGIN');
        try {
          await c.query(m.sql);
          await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, clock()]);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }
      return newest;
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {
        broken = true; // a lost connection released the lock with it
      });
    }
  } finally {
    c.removeListener('error', onError);
    c.release(broken);
  }
}
