/** Real registries on temp-dir SQLite files, a controllable clock, and fresh P-256 keys. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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

export interface RegistryFixture {
  dir: string;
  file: string;
  clock: TestClock;
  registry: Registry;
  reopen(opts?: Partial<RegistryOptions>): Registry;
  cleanup(): void;
}

export function registryFixture(opts: Partial<RegistryOptions> = {}): RegistryFixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-registry-'));
  const file = path.join(dir, 'latchkey.db');
  const clock = testClock();
  const fx: RegistryFixture = {
    dir,
    file,
    clock,
    registry: openRegistry(file, { clock, ...opts }),
    reopen(more = {}) {
      fx.registry.close();
      fx.registry = openRegistry(file, { clock, ...opts, ...more });
      return fx.registry;
    },
    cleanup() {
      fx.registry.close();
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

/** The `code` of the RegistryError `fn` throws; any other error is rethrown, no error fails the test. */
export function registryErrorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RegistryError) return e.code;
    throw e;
  }
  throw new Error('expected a RegistryError');
}
