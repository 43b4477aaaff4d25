/**
 * What only the PostgreSQL backend has: the int8 parser with its 2^53 check, the mapping of
 * PostgreSQL errors (SQLSTATE 23505 and constraint names) to registry codes, and the database URL's
 * one check and its redaction.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { checkDatabaseUrl, openRegistry, redactDatabaseUrl, redactPassword } from '../../provisioning/src/registry/index.ts';
import { toRegistryError } from '../../provisioning/src/registry/errors.ts';
import { parseInt8, PG_TYPES } from '../../provisioning/src/registry/postgres-runner.ts';
import { BACKENDS, newKey, postgresTarget, registryFixture, withPostgres } from './registry-fixture.ts';

describe('int8 as a number', () => {
  it('keeps every safe integer and refuses anything beyond 2^53 instead of rounding it', () => {
    expect(parseInt8('1796053485336')).toBe(1_796_053_485_336);
    expect(parseInt8('-9007199254740991')).toBe(-9_007_199_254_740_991);
    expect(() => parseInt8('9007199254740993')).toThrow(RangeError);
  });

  it.runIf(BACKENDS.includes('postgres'))('on a real query: the value or a rejected query, never a silently rounded one', async () => {
    const { url } = postgresTarget();
    const client = new pg.Client({ connectionString: url, types: PG_TYPES });
    await client.connect();
    try {
      const { rows } = await client.query("SELECT 1796053485336::bigint AS at, count(*) AS n, '{\"b\":1,\"a\":2}'::json AS j FROM (VALUES (1)) v");
      expect(rows[0]).toEqual({ at: 1_796_053_485_336, n: 1, j: '{"b":1,"a":2}' }); // json as given
      await expect(client.query('SELECT 9007199254740993::bigint AS big')).rejects.toThrow(RangeError);
      expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]); // the connection still works
    } finally {
      await client.end();
    }
  });
});

describe.runIf(BACKENDS.includes('postgres'))('PostgreSQL errors never leave the registry', () => {
  it('maps unique violations by constraint name, everything else to internal_error without detail', async () => {
    const fx = await registryFixture('postgres');
    try {
      const k = newKey();
      await fx.registry.devices.create({ id: 'map-1', key: k.parsed }, 'admin');
      await fx.registry.services.create({ name: 'map-svc', key: newKey().parsed, acl: { publish: [], subscribe: [] } }, 'admin');
      const raised = (sql: string) =>
        withPostgres(async (c) => {
          try {
            await c.query(sql);
          } catch (e) {
            return e;
          }
          throw new Error('expected an error');
        });
      const dup = async (sql: string) => toRegistryError(await raised(sql)).code;
      expect(await dup("INSERT INTO devices (id, created_at) VALUES ('map-1', 0)")).toBe('device_exists');
      expect(await dup("INSERT INTO services (name, acl, created_at) VALUES ('map-svc', '{}', 0)")).toBe('service_exists');
      expect(await dup(`INSERT INTO credentials (kid, principal, device_id, fingerprint, spki_der, created_at) VALUES ('k2', 'map-1', 'map-1', '${k.parsed.fingerprint}', '\\x00', 0)`)).toBe('key_in_use');
      const other = toRegistryError(await raised('SELECT * FROM no_such_table'));
      expect(other).toMatchObject({ name: 'RegistryError', code: 'internal_error', message: 'internal registry error' });
      expect(other.message).not.toMatch(/relation|no_such_table|postgres/i);
    } finally {
      await fx.cleanup();
    }
  });

  it('a database that cannot be reached rejects the open with internal_error, the password nowhere in it', async () => {
    // a closed port: nothing listens there
    const url = 'postgres://latchkey:s3cret-pw@127.0.0.1:1/latchkey';
    const err = await openRegistry(url, { clock: Date.now }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'RegistryError', code: 'internal_error' });
    expect(JSON.stringify(err)).not.toContain('s3cret-pw');
    expect(String((err as Error).message)).not.toContain('s3cret-pw');
  });
});

describe('the database URL', () => {
  it('is checked once: postgres:// or postgresql:// with a host; the message never repeats it', () => {
    expect(checkDatabaseUrl('postgres://u:p@db.internal:5432/lk')).toEqual({ ok: true, url: 'postgres://u:p@db.internal:5432/lk' });
    expect(checkDatabaseUrl('postgresql://db/lk').ok).toBe(true);
    for (const bad of ['', 'mysql://u:s3cret@db/lk', 'postgres://', 'not a url s3cret', 42]) {
      const r = checkDatabaseUrl(bad);
      expect(r.ok).toBe(false);
      expect(JSON.stringify(r)).not.toContain('s3cret');
    }
  });

  it('is redacted for logs and messages: password and password parameters', () => {
    expect(redactDatabaseUrl('postgres://latchkey:s3cret@db:5432/lk')).toBe('postgres://latchkey:***@db:5432/lk');
    expect(redactDatabaseUrl('postgres://db/lk?password=s3cret&sslmode=require')).toBe('postgres://db/lk?password=***&sslmode=require');
    expect(redactDatabaseUrl('postgres://db/lk')).toBe('postgres://db/lk');
    expect(redactDatabaseUrl('%%%')).toBe('[database URL]');
    expect(redactPassword('auth failed for s3cret%2F', 'postgres://u:s3cret%252F@db/lk')).toBe('auth failed for ***');
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(openRegistry('postgres://127.0.0.1:1/lk', { clock: Date.now, postgres: { schema: 'x; DROP TABLE devices' } })).rejects.toThrow(TypeError);
  });
});
