import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, openRegistry, POSTGRES_MIGRATIONS } from '../../provisioning/src/registry/index.ts';
import { BACKENDS, newKey, postgresTarget, registryFixture, withPostgres, type RegistryFixture } from './registry-fixture.ts';

describe.each(BACKENDS)('migrations on %s', (backend) => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture(backend);
  });
  afterEach(() => fx.cleanup());

  const applied = async () => (await fx.rows('SELECT version, name FROM schema_migrations ORDER BY version')).map((r) => [Number(r.version), r.name]);

  it('are applied once and are idempotent on reopen, keeping data', async () => {
    await fx.registry.devices.create({ id: 'keep-1', key: newKey().parsed }, 'admin');
    const list = backend === 'sqlite' ? MIGRATIONS : POSTGRES_MIGRATIONS;
    expect(await applied()).toEqual(list.map((m) => [m.version, m.name]));
    await fx.reopen();
    await fx.reopen();
    expect(await applied()).toEqual(list.map((m) => [m.version, m.name]));
    expect((await fx.registry.devices.get('keep-1')).id).toBe('keep-1');
  });

  it('refuses a database written by a newer schema', async () => {
    await fx.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)");
    try {
      await expect(openRegistry(fx.location, fx.options())).rejects.toThrow(TypeError);
    } finally {
      await fx.exec('DELETE FROM schema_migrations WHERE version = 999');
    }
  });

  it('enforces foreign keys: deleting a device cascades to credentials, status, config and state', async () => {
    await fx.registry.devices.create({ id: 'casc-1', key: newKey().parsed }, 'admin');
    await fx.registry.recordConnected('casc-1', fx.clock());
    await fx.registry.configState.setConfig('casc-1', { a: 1 }, undefined, 'admin');
    await fx.registry.saveState('casc-1', '{"on":true}', fx.clock());
    await fx.registry.devices.delete('casc-1', 'admin');
    for (const table of ['credentials', 'device_status', 'device_config', 'device_state']) {
      expect(await fx.count(`SELECT count(*) FROM ${table}`)).toBe(0);
    }
  });
});

describe('migrations on SQLite', () => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture('sqlite');
  });
  afterEach(() => fx.cleanup());

  it('keep the file in WAL mode with user_version at the newest migration', async () => {
    await fx.registry.close();
    const db = new Database(fx.file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)!.version);
    } finally {
      db.close();
    }
    await fx.reopen();
  });
});

describe.runIf(BACKENDS.includes('postgres'))('migrations on PostgreSQL', () => {
  it('run once when several processes open the same database at once (advisory lock)', async () => {
    const { url } = postgresTarget();
    const schema = `t_race_${Date.now().toString(36)}`;
    const opened = await Promise.all(Array.from({ length: 4 }, () => openRegistry(url, { clock: Date.now, postgres: { schema } })));
    try {
      const rows = await withPostgres(async (c) => (await c.query(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`)).rows);
      expect(rows.map((r) => r.version)).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
    } finally {
      await Promise.all(opened.map((r) => r.close()));
      await withPostgres((c) => c.query(`DROP SCHEMA ${schema} CASCADE`));
    }
  });
});
