import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { requireService } from './helpers/services.ts';

const pg = requireService('postgres');
const redis = requireService('redis');

describe('test services (scripts/test-services.sh, test/global-setup.ts)', () => {
  it.skipIf(pg.skip)(`PostgreSQL answers a query${pg.note}`, () => {
    const url = pg.assertPresent();
    const out = execFileSync('psql', [url, '-Atc', 'SHOW server_version_num'], { encoding: 'utf8' });
    expect(Number(out.trim())).toBeGreaterThanOrEqual(150000);
  });

  it.skipIf(redis.skip)(`Redis answers PING${redis.note}`, () => {
    const url = redis.assertPresent();
    expect(execFileSync('redis-cli', ['-u', url, 'ping'], { encoding: 'utf8' }).trim()).toBe('PONG');
  });

  it('an absent server skips the test outside CI and fails it under CI=true', () => {
    const local = requireService('redis', {});
    expect(local).toMatchObject({ url: null, skip: true });
    const ci = requireService('redis', { CI: 'true' });
    expect(ci.skip).toBe(false);
    expect(() => ci.assertPresent()).toThrow(/CI must provide it/);
  });
});
