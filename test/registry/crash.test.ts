import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registryFixture, type RegistryFixture } from './registry-fixture.ts';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

let fx: RegistryFixture;
beforeEach(() => {
  fx = registryFixture();
  fx.registry.close(); // the child owns the file until it dies
});
afterEach(() => fx.cleanup());

/** Runs the child until it reports being inside the batch transaction, then SIGKILLs it. */
function killMidBatch(file: string): Promise<{ signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@latchkey/source', '--import', 'tsx', CHILD, file], { stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('crash safety', () => {
  it('a SIGKILL mid-batch leaves no partial device and a sound database', async () => {
    const { signal, out } = await killMidBatch(fx.file);
    expect(signal).toBe('SIGKILL');
    expect(out).not.toContain('batch-committed');

    const raw = new Database(fx.file);
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(raw.pragma('foreign_key_check')).toEqual([]);
    expect(raw.prepare('SELECT id FROM devices').pluck().all()).toEqual(['committed-1']);
    expect(raw.prepare("SELECT count(*) FROM credentials WHERE principal LIKE 'batch-%'").pluck().get()).toBe(0);
    expect(raw.prepare("SELECT count(*) FROM audit_log WHERE action = 'device.batch_create'").pluck().get()).toBe(0);
    raw.close();

    // the registry reopens on the recovered file and works
    const registry = fx.reopen();
    expect(registry.devices.list({ limit: 10 }).items.map((d) => d.id)).toEqual(['committed-1']);
  });
});
