/**
 * Real registries on temp-dir SQLite files (one per test), a controllable clock, fresh P-256 keys.
 * Tests run for each of `BACKENDS`.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parsePublicKey, type ParsedPublicKey } from '@latchkey/device-sdk/protocol';
import { openRegistry, RegistryError, type Registry, type RegistryOptions } from '../../provisioning/src/registry/index.ts';

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

export type BackendName = 'sqlite';

/** The backends this run tests the registry on. */
export const BACKENDS: readonly BackendName[] = ['sqlite'];

export interface RegistryFixture {
  backend: BackendName;
  /** the temp dir and the database file */
  dir: string;
  file: string;
  /** what `openRegistry` was given */
  location: string;
  clock: TestClock;
  registry: Registry;
  /** the options every open of this fixture uses */
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
  const file = path.join(dir, 'latchkey.db');
  const location = file;
  const base: Partial<RegistryOptions> = {};
  const options = (more: Partial<RegistryOptions> = {}): RegistryOptions => ({ clock, ...base, ...opts, ...more });
  const fx: RegistryFixture = {
    backend,
    dir,
    file,
    location,
    clock,
    registry: await openRegistry(location, options()),
    options,
    async rows(sql, ...params) {
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
