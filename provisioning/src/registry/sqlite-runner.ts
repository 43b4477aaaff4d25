import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Query } from './plan.ts';
import { driveSync, type Runner } from './runner.ts';
import { migrate } from './migrations.ts';

/** SQLite has no boolean type (0/1) and binds Buffers, not other Uint8Arrays. */
function bindable(p: unknown): unknown {
  if (typeof p === 'boolean') return p ? 1 : 0;
  if (p === undefined) return null;
  if (p instanceof Uint8Array && !Buffer.isBuffer(p)) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  return p;
}

/**
 * The SQLite runner: every plan runs synchronously, a write inside one `BEGIN IMMEDIATE`
 * transaction, so nothing can interleave with it (the promise it returns is already settled).
 * Statements are prepared once per connection.
 */
export function sqliteRunner(db: Db): Runner {
  const statements = new Map<string, Statement>();
  const exec = (q: Query): unknown => {
    let s = statements.get(q.sql.sqlite);
    if (s === undefined) {
      s = db.prepare(q.sql.sqlite);
      statements.set(q.sql.sqlite, s);
    }
    const params = q.params.map(bindable);
    if (q.mode === 'get') return s.get(...params);
    if (q.mode === 'all') return s.all(...params);
    return s.run(...params).changes;
  };
  return {
    dialect: 'sqlite',
    write(plan) {
      try {
        return Promise.resolve(db.transaction(() => driveSync(plan(), exec)).immediate());
      } catch (e) {
        return Promise.reject(e);
      }
    },
    read(plan) {
      try {
        return Promise.resolve(driveSync(plan(), exec));
      } catch (e) {
        return Promise.reject(e);
      }
    },
    async ping() {
      try {
        return db.prepare('PRAGMA quick_check').pluck().get() === 'ok';
      } catch {
        return false;
      }
    },
    get open() {
      return db.open;
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

/**
 * Opens (creating if needed) the SQLite file at `path` (`:memory:` works too) in WAL mode with
 * foreign keys on, migrated to the newest schema.
 */
export function openSqlite(path: string, clock: () => number): Runner {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    migrate(db, clock);
    return sqliteRunner(db);
  } catch (e) {
    db.close();
    throw e;
  }
}
