/**
 * Issue 16, findings 5 and 9: the audit log and refused-connect records keep a bounded window,
 * expired enrollment tokens are purged, in the background, by the injected clock.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRUNE_BATCH, startRetention, type RetentionTask } from '../../provisioning/src/registry/index.ts';
import { newKey, registryFixture, type RegistryFixture } from './registry-fixture.ts';

const DAY = 86_400_000;
const POLICY = { auditRetentionMs: 30 * DAY, maxRefusals: 1_000 };
let fx: RegistryFixture;
let task: RetentionTask | null = null;
beforeEach(() => {
  fx = registryFixture();
});
afterEach(() => {
  task?.stop();
  task = null;
  fx.cleanup();
});

const refuse = (n: number, principal = 'ghost-1') => {
  for (let i = 0; i < n; i++) fx.registry.recordAuthFailure({ principal, clientId: principal, reason: 'unknown_principal', remoteAddress: '10.0.0.1', at: fx.clock() });
};
const actions = () => fx.registry.audit.list({ limit: 10_000 }).map((e) => e.action);
const count = (sql: string) => {
  const db = new Database(fx.file, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
};

describe('pruning', () => {
  it('deletes audit entries past the retention window, of every kind, and keeps the rest', () => {
    fx.registry.devices.create({ id: 'old-1', key: newKey().parsed }, 'admin');
    refuse(3);
    fx.clock.advance(30 * DAY + 1);
    fx.registry.devices.create({ id: 'new-1', key: newKey().parsed }, 'admin');
    refuse(2);
    expect(fx.registry.retention.pruneStep(POLICY, fx.clock())).toEqual({ audit: 4, refusals: 0, enrollmentTokens: 0 });
    expect(actions()).toEqual(['auth.failure', 'auth.failure', 'device.create']);
    expect(fx.registry.devices.get('old-1').id).toBe('old-1'); // only history goes, never state
  });

  it('caps refused-connect records, oldest first, without touching admin and enrollment entries', () => {
    fx.registry.devices.create({ id: 'keep-1', key: newKey().parsed }, 'admin');
    refuse(1_500);
    fx.registry.devices.update('keep-1', { blocked: true }, 'admin');
    refuse(100, 'ghost-2');
    expect(fx.registry.retention.pruneStep(POLICY, fx.clock())).toEqual({ audit: 0, refusals: 600, enrollmentTokens: 0 });
    expect(count("SELECT count(*) FROM audit_log WHERE action = 'auth.failure'")).toBe(1_000);
    expect(count("SELECT count(*) FROM audit_log WHERE target = 'ghost-2'")).toBe(100); // the newest survive
    expect(actions().filter((a) => a !== 'auth.failure')).toEqual(['device.update', 'device.create']);
  });

  it('purges expired enrollment tokens and records how many', () => {
    const make = (tokenId: string, expiresAt: number) =>
      fx.registry.enrollment.create({ tokenId, secretHash: Buffer.alloc(32), uses: 1, expiresAt, idPattern: null, metadata: {} }, 'admin');
    make('expired00001', fx.clock() + 1_000);
    make('expired00002', fx.clock() + 2_000);
    make('stillgood001', fx.clock() + DAY);
    fx.clock.advance(2_000);
    expect(fx.registry.retention.pruneStep(POLICY, fx.clock()).enrollmentTokens).toBe(2);
    expect(fx.registry.enrollment.list({ limit: 10 }).items.map((t) => t.tokenId)).toEqual(['stillgood001']);
    expect(fx.registry.audit.list({ limit: 1 })[0]).toMatchObject({ actor: 'retention', action: 'enrollment_token.purge', detail: { count: 2 } });
  });

  it('works in bounded steps', () => {
    refuse(50);
    fx.clock.advance(31 * DAY);
    expect(fx.registry.retention.pruneStep(POLICY, fx.clock(), 20).audit).toBe(20);
    expect(fx.registry.retention.pruneStep(POLICY, fx.clock(), 20).audit).toBe(20);
    expect(fx.registry.retention.pruneStep(POLICY, fx.clock(), 20).audit).toBe(10);
  });
});

describe('startRetention', () => {
  it('runs at start and on demand, in as many steps as needed, by the injected clock', async () => {
    // more rows than one step deletes, written directly for speed
    const db = new Database(fx.file);
    const insert = db.prepare("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, 'broker', 'auth.failure', 'ghost-1', '{}')");
    db.transaction(() => {
      for (let i = 0; i < PRUNE_BATCH * 2 + 10; i++) insert.run(fx.clock());
    })();
    db.close();
    const pruned: unknown[] = [];
    task = startRetention(fx.registry.retention, { clock: fx.clock, policy: POLICY, intervalMs: 3_600_000, onError: (e) => pruned.push(e), onPruned: (c) => pruned.push(c) });
    // the pass started at start trims to the cap
    expect(await task.runOnce()).toMatchObject({ refusals: PRUNE_BATCH * 2 + 10 - POLICY.maxRefusals });
    fx.clock.advance(30 * DAY + 1);
    expect(await task.runOnce()).toEqual({ audit: POLICY.maxRefusals, refusals: 0, enrollmentTokens: 0 });
    expect(count('SELECT count(*) FROM audit_log')).toBe(0);
    expect(pruned).toEqual([
      { audit: 0, refusals: PRUNE_BATCH * 2 + 10 - POLICY.maxRefusals, enrollmentTokens: 0 },
      { audit: POLICY.maxRefusals, refusals: 0, enrollmentTokens: 0 },
    ]);
  });

  it('refuses a policy that would keep nothing bounded', () => {
    expect(() => startRetention(fx.registry.retention, { clock: fx.clock, policy: { auditRetentionMs: 0, maxRefusals: 1 }, intervalMs: 1000, onError: () => {} })).toThrow(TypeError);
  });
});
