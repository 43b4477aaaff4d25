import type { Database } from 'better-sqlite3';

/**
 * Versioned schema migrations. Each runs once, in order, inside one transaction together with
 * its `schema_migrations` row, so a crash mid-migration leaves the previous version intact.
 * Never edit a shipped migration: append a new one.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE devices (
        id         TEXT PRIMARY KEY,
        blocked    INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
        metadata   TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE services (
        name       TEXT PRIMARY KEY,
        acl        TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;

      -- protocol.md §Keys: one key identifies one principal, across devices and services.
      CREATE TABLE credentials (
        kid          TEXT PRIMARY KEY,
        principal    TEXT NOT NULL,
        device_id    TEXT REFERENCES devices(id) ON DELETE CASCADE,
        service_name TEXT REFERENCES services(name) ON DELETE CASCADE,
        fingerprint  TEXT NOT NULL UNIQUE,
        spki_der     BLOB NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        CHECK ((device_id IS NULL) <> (service_name IS NULL))
      ) STRICT;
      CREATE INDEX credentials_by_principal ON credentials(principal);
      CREATE INDEX credentials_by_device ON credentials(device_id);
      CREATE INDEX credentials_by_service ON credentials(service_name);

      -- api.md §Zero-touch enrollment: only the SHA-256 of the secret is stored.
      CREATE TABLE enrollment_tokens (
        id          TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        uses_total  INTEGER NOT NULL CHECK (uses_total >= 1),
        uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
        expires_at  INTEGER NOT NULL,
        id_pattern  TEXT,
        metadata    TEXT NOT NULL DEFAULT '{}',
        created_at  INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE device_config (
        device_id  TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        version    INTEGER NOT NULL,
        config     TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE device_state (
        device_id   TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        state       TEXT NOT NULL,
        reported_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE device_status (
        device_id            TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        sessions             INTEGER NOT NULL DEFAULT 0 CHECK (sessions >= 0),
        last_connected_at    INTEGER,
        last_disconnected_at INTEGER,
        last_seen_at         INTEGER,
        last_error_code      TEXT,
        last_error_at        INTEGER
      ) STRICT;

      CREATE TABLE audit_log (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      CREATE INDEX audit_by_target ON audit_log(target, seq);
    `,
  },
  {
    version: 2,
    name: 'keyset paging of enrollment tokens; retention',
    sql: `
      -- GET /v1/enrollment-tokens pages in creation order; expired tokens are purged by expiry
      CREATE INDEX enrollment_tokens_by_created ON enrollment_tokens(created_at, id);
      CREATE INDEX enrollment_tokens_by_expiry ON enrollment_tokens(expires_at);
      -- retention: age-based pruning, and the cap on refused-connect records
      CREATE INDEX audit_by_at ON audit_log(at);
      CREATE INDEX audit_by_action ON audit_log(action, seq);
    `,
  },
  {
    version: 3,
    name: 'console indexes',
    // Partial indexes in id order, so the console's status filters page by the key without
    // scanning every device (docs/console.md), and refused connects by time for the health chart.
    sql: `
      CREATE INDEX device_status_connected ON device_status(device_id) WHERE sessions > 0;
      CREATE INDEX device_status_refused ON device_status(device_id) WHERE last_error_code IS NOT NULL;
      CREATE INDEX devices_blocked ON devices(id) WHERE blocked = 1;
      CREATE INDEX audit_by_action_at ON audit_log(action, at);
    `,
  },
  {
    version: 4,
    name: 'credential usage and key history',
    sql: `
      -- issue 15: when each credential last verified a connect and a signed message (batched by the broker)
      ALTER TABLE credentials ADD COLUMN last_connect_at INTEGER;
      ALTER TABLE credentials ADD COLUMN last_message_at INTEGER;
      -- protocol.md §Signed messages: a removed credential stays in the key history, with when it was removed
      CREATE TABLE credential_history (
        kid             TEXT PRIMARY KEY,
        principal       TEXT NOT NULL,
        device_id       TEXT REFERENCES devices(id) ON DELETE CASCADE,
        service_name    TEXT REFERENCES services(name) ON DELETE CASCADE,
        fingerprint     TEXT NOT NULL,
        spki_der        BLOB NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER,
        removed_at      INTEGER NOT NULL,
        last_connect_at INTEGER,
        last_message_at INTEGER,
        CHECK ((device_id IS NULL) <> (service_name IS NULL))
      ) STRICT;
      CREATE INDEX credential_history_by_principal ON credential_history(principal);
      CREATE INDEX credential_history_by_device ON credential_history(device_id);
      CREATE INDEX credential_history_by_service ON credential_history(service_name);
    `,
  },
  {
    version: 5,
    name: 'Cloud IoT Core bindings, raw config bytes and config acks',
    sql: `
      -- protocol.md §Cloud IoT Core client ids: the registry a device was imported from; numId is Cloud IoT Core's
      -- unsigned 64-bit id in canonical decimal (text: exact above 2^53)
      CREATE TABLE gcp_devices (
        device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        project   TEXT NOT NULL,
        location  TEXT NOT NULL,
        registry  TEXT NOT NULL,
        num_id    TEXT NOT NULL UNIQUE
      ) STRICT;
      -- protocol.md §Cloud IoT Core config: an imported config's raw bytes (null: the JSON config's text),
      -- and when the device PUBACKed this version (deviceAckTime)
      ALTER TABLE device_config ADD COLUMN data BLOB;
      ALTER TABLE device_config ADD COLUMN device_ack_at INTEGER;
    `,
  },
];

/**
 * Brings the schema up to the newest migration. Idempotent: applied versions are skipped.
 * Throws TypeError if the file was written by a newer latchkey (unknown versions).
 */
export function migrate(db: Database, clock: () => number, migrations: readonly Migration[] = MIGRATIONS): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]),
  );
  const newest = Math.max(0, ...migrations.map((m) => m.version));
  for (const v of applied) {
    if (v > newest) throw new TypeError(`database schema version ${v} is newer than this latchkey (${newest})`);
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, clock());
    }).immediate();
  }
  db.pragma(`user_version = ${newest}`);
  return newest;
}
