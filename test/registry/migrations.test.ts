import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, openRegistry } from '../../provisioning/src/registry/index.ts';
import { newKey, registryFixture, type RegistryFixture } from './registry-fixture.ts';

let fx: RegistryFixture;
beforeEach(() => {
  fx = registryFixture();
});
afterEach(() => fx.cleanup());

function inspect(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    return {
      migrations: db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(),
      userVersion: db.pragma('user_version', { simple: true }),
      journal: db.pragma('journal_mode', { simple: true }),
      tables: db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all(),
    };
  } finally {
    db.close();
  }
}

describe('migrations', () => {
  it('are applied once and are idempotent on reopen, keeping data', () => {
    fx.registry.devices.create({ id: 'keep-1', key: newKey().parsed }, 'admin');
    const before = inspect(fx.file);
    expect(before.migrations).toEqual(MIGRATIONS.map((m) => m.version));
    expect(before.userVersion).toBe(MIGRATIONS.at(-1)!.version);
    expect(before.journal).toBe('wal');
    fx.reopen();
    fx.reopen();
    expect(inspect(fx.file)).toEqual(before);
    expect(fx.registry.devices.get('keep-1').id).toBe('keep-1');
  });

  it('refuses a database written by a newer schema', () => {
    fx.registry.close();
    const db = new Database(fx.file);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
    db.close();
    expect(() => openRegistry(fx.file, { clock: fx.clock })).toThrow(TypeError);
    fx.registry = openRegistry(':memory:', { clock: fx.clock }); // so cleanup has something to close
  });

  it('enforces foreign keys: deleting a device cascades to credentials, status, config and state', () => {
    fx.registry.devices.create({ id: 'casc-1', key: newKey().parsed }, 'admin');
    fx.registry.recordConnected('casc-1', fx.clock());
    fx.registry.configState.setConfig('casc-1', { a: 1 }, undefined, 'admin');
    fx.registry.saveState('casc-1', '{"on":true}', fx.clock());
    fx.registry.devices.delete('casc-1', 'admin');
    fx.registry.close();
    const db = new Database(fx.file, { readonly: true });
    for (const table of ['credentials', 'device_status', 'device_config', 'device_state']) {
      expect(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get()).toBe(0);
    }
    db.close();
    fx.reopen();
  });
});
