import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Throwaway PostgreSQL and Redis for the whole run (docs/architecture.md §Test services). When
 * LATCHKEY_TEST_DATABASE_URL / LATCHKEY_TEST_REDIS_URL are already set (.ci/run sets them), those
 * servers are used; otherwise whichever of the two is installed is started here on a free loopback
 * port by scripts/test-services.sh and stopped at the end. Test workers inherit the variables.
 * What is missing is reported by the tests that need it (test/helpers/services.ts).
 */
export default function setup(): (() => void) | undefined {
  if (process.env.LATCHKEY_TEST_DATABASE_URL && process.env.LATCHKEY_TEST_REDIS_URL) return undefined;
  const script = path.resolve(import.meta.dirname, '../scripts/test-services.sh');
  let out: string;
  try {
    out = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (err) {
    console.warn(`test services: could not start PostgreSQL/Redis (${(err as Error).message.split('\n')[0]})`);
    return undefined;
  }
  let dir: string | null = null;
  for (const line of out.split('\n')) {
    const m = /^export (LATCHKEY_TEST_[A-Z_]+)=(.*)$/.exec(line);
    if (m === null) continue;
    const [, name, value] = m as unknown as [string, string, string];
    if (name === 'LATCHKEY_TEST_SERVICES_DIR') dir = value;
    else process.env[name] ??= value;
  }
  return () => {
    if (dir !== null) execFileSync('bash', [script, 'stop', dir], { stdio: 'ignore' });
  };
}
