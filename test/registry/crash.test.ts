import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, postgresTarget, registryFixture, type RegistryFixture } from './registry-fixture.ts';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

/** Runs the child until it reports being inside the batch transaction, then SIGKILLs it. */
function killMidBatch(args: string[]): Promise<{ signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@latchkey/source', '--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('inside-transaction')) child.kill('SIGKILL');
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      if (!out.includes('inside-transaction')) reject(new Error(`child exited early: ${err}`));
      else resolve({ signal, out });
    });
  });
}

describe.each(BACKENDS)('crash safety on %s', (backend) => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture(backend);
    await fx.registry.close(); // the child owns the database until it dies
  });
  afterEach(() => fx.cleanup());

  it('a SIGKILL mid-batch leaves no partial device and a sound database', { timeout: 60_000 }, async () => {
    const { signal, out } = await killMidBatch(backend === 'sqlite' ? [fx.file] : [fx.location, postgresTarget().schema]);
    expect(signal).toBe('SIGKILL');
    expect(out).not.toContain('batch-committed');

    if (backend === 'sqlite') {
      const raw = new Database(fx.file);
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(raw.pragma('foreign_key_check')).toEqual([]);
      raw.close();
    }
    // PostgreSQL rolls the transaction of a lost connection back (at once for a closed socket)
    expect((await fx.rows('SELECT id FROM devices')).map((r) => r.id)).toEqual(['committed-1']);
    expect(await fx.count("SELECT count(*) FROM credentials WHERE principal LIKE 'batch-%'")).toBe(0);
    expect(await fx.count("SELECT count(*) FROM audit_log WHERE action = 'device.batch_create'")).toBe(0);
    if (backend === 'postgres') expect(await fx.count('SELECT count(*) FROM registry_changes')).toBe(1); // committed-1's only

    // the registry reopens on the recovered database and works
    const registry = await fx.reopen();
    expect((await registry.devices.list({ limit: 10 })).items.map((d) => d.id)).toEqual(['committed-1']);
  });
});
