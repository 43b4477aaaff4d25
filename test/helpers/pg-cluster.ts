/**
 * A dedicated throwaway PostgreSQL cluster for the tests that stop and start the server (the change
 * feed's restart tests): `initdb` + `pg_ctl` in a temp dir on a free loopback port, fsync off, as the
 * `postgres` user when run as root (initdb refuses root), like scripts/test-services.sh. The shared
 * server of LATCHKEY_TEST_DATABASE_URL is never restarted: other test files use it.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PgCluster {
  /** `postgres://latchkey@127.0.0.1:<port>/latchkey` */
  readonly url: string;
  /** stops the server (fast shutdown: connections are terminated) */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stops it and removes its files */
  destroy(): Promise<void>;
}

/** The PostgreSQL binaries' directory, or null when none is installed. */
export function pgBinDir(env: Readonly<Record<string, string | undefined>> = process.env): string | null {
  if (env.PG_BIN) return env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const v of readdirSync(root).sort().reverse()) {
      const dir = path.join(root, v, 'bin');
      if (existsSync(path.join(dir, 'initdb'))) return dir;
    }
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBinDir();
  if (bin === null) throw new Error('no PostgreSQL binaries (initdb) found');
  const root = process.getuid?.() === 0;
  const asPg = (cmd: string, args: string[]) => (root ? run('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]) : run(path.join(bin, cmd), args));
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-pg-'));
  if (root) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout.trim()), Number((await run('id', ['-g', 'postgres'])).stdout.trim()));
  const data = path.join(dir, 'data');
  const port = await freePort();
  await asPg('initdb', ['-D', data, '-U', 'latchkey', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = async () => {
    await asPg('pg_ctl', ['-D', data, '-l', path.join(dir, 'pg.log'), '-w', '-t', '60', '-o', options, 'start']);
  };
  const stop = async () => {
    await asPg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  };
  await start();
  await asPg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'latchkey', 'latchkey']);
  return {
    url: `postgres://latchkey@127.0.0.1:${port}/latchkey`,
    start,
    stop,
    async destroy() {
      await asPg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
