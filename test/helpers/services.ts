import { expect } from 'vitest';

/** A server some tests need (started by test/global-setup.ts or .ci/run), and whether to run them. */
export interface RequiredService {
  /** its URL, or null when it is not running */
  readonly url: string | null;
  /** skip the test: the server is absent and this is not a CI run */
  readonly skip: boolean;
  /** appended to the test's name when the server is absent: what it needs */
  readonly note: string;
  /** its URL; fails the test when the server is absent (it only runs then under CI=true) */
  assertPresent(): string;
}

const SERVICES = {
  postgres: { env: 'LATCHKEY_TEST_DATABASE_URL', install: 'PostgreSQL 15 (initdb, pg_ctl) or LATCHKEY_TEST_DATABASE_URL' },
  redis: { env: 'LATCHKEY_TEST_REDIS_URL', install: 'apt-get install redis-server, or LATCHKEY_TEST_REDIS_URL' },
} as const;

/**
 * Tests that need PostgreSQL or Redis skip with one line saying what is missing when it is absent,
 * except under `CI=true`: CI provides both, so there an absent server fails the run instead of
 * hiding the tests (the developers' guide, "Services and CI").
 *
 * @example
 * ```ts
 * const pg = requireService('postgres');
 * describe.skipIf(pg.skip)(`registry on PostgreSQL${pg.note}`, () => { const url = pg.assertPresent(); … });
 * ```
 */
export function requireService(name: keyof typeof SERVICES, env: Readonly<Record<string, string | undefined>> = process.env): RequiredService {
  const { env: variable, install } = SERVICES[name];
  const url = env[variable] || null;
  const reason = `${name} is not available (${install})`;
  const skip = url === null && env.CI !== 'true';
  if (skip && env === process.env) console.warn(`skipped, ${reason}`); // the one line a skip prints, whatever the reporter
  return {
    url,
    skip,
    note: url === null ? ` [needs ${name}]` : '',
    assertPresent() {
      expect(url, `CI=true and ${reason}: CI must provide it`).not.toBeNull();
      return url as string;
    },
  };
}
