/**
 * Issue 16, findings 5 and 9: the audit log and refused-connect records keep a bounded window,
 * expired enrollment tokens are purged, in the background, by the injected clock. On PostgreSQL
 * the change feed's outbox is pruned too, never its newest row.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OUTBOX_RETENTION_MS, PRUNE_BATCH, startRetention, type RetentionTask } from '../../provisioning/src/registry/index.ts';
import { BACKENDS, newKey, registryFixture, type RegistryFixture } from './registry-fixture.ts';

const DAY = 86_400_000;
const POLICY = { auditRetentionMs: 30 * DAY, maxRefusals: 1_000 };
const NONE = { audit: 0, refusals: 0, enrollmentTokens: 0, changes: 0 };

describe.each(BACKENDS)('retention on %s', (backend) => {
  let fx: RegistryFixture;
  let task: RetentionTask | null = null;
  beforeEach(async () => {
    fx = await registryFixture(backend);
  });
  afterEach(async () => {
    task?.stop();
    task = null;
    await fx.cleanup();
  });

  const refuse = async (n: number, principal = 'ghost-1') => {
    for (let i = 0; i < n; i++) {
      await fx.registry.recordAuthFailure({ principal, clientId: principal, reason: 'unknown_principal', remoteAddress: '10.0.0.1', at: fx.clock() });
    }
  };
  /** many refusal records at once, written directly (the registry's own path is tested above) */
  const refusals = (n: number, principal = 'ghost-1') =>
    fx.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO audit_log (at, actor, action, target, detail) SELECT ?, 'broker', 'auth.failure', ?, '{}' FROM n`,
      [[n, fx.clock(), principal]],
    );
  const actions = async () => (await fx.registry.audit.list({ limit: 10_000 })).map((e) => e.action);

  describe('pruning', () => {
    it('deletes audit entries past the retention window, of every kind, and keeps the rest', async () => {
      await fx.registry.devices.create({ id: 'old-1', key: newKey().parsed }, 'admin');
      await refuse(3);
      fx.clock.advance(30 * DAY + 1);
      await fx.registry.devices.create({ id: 'new-1', key: newKey().parsed }, 'admin');
      await refuse(2);
      // on PostgreSQL the change feed's outbox row of old-1 goes too (past its hour)
      expect(await fx.registry.retention.pruneStep(POLICY, fx.clock())).toEqual({ ...NONE, audit: 4, changes: backend === 'postgres' ? 1 : 0 });
      expect(await actions()).toEqual(['auth.failure', 'auth.failure', 'device.create']);
      expect((await fx.registry.devices.get('old-1')).id).toBe('old-1'); // only history goes, never state
    });

    it('caps refused-connect records, oldest first, without touching admin and enrollment entries', async () => {
      await fx.registry.devices.create({ id: 'keep-1', key: newKey().parsed }, 'admin');
      await refusals(1_500);
      await fx.registry.devices.update('keep-1', { blocked: true }, 'admin');
      await refusals(100, 'ghost-2');
      expect(await fx.registry.retention.pruneStep(POLICY, fx.clock())).toEqual({ ...NONE, refusals: 600 });
      expect(await fx.count("SELECT count(*) FROM audit_log WHERE action = 'auth.failure'")).toBe(1_000);
      expect(await fx.count("SELECT count(*) FROM audit_log WHERE target = 'ghost-2'")).toBe(100); // the newest survive
      expect((await actions()).filter((a) => a !== 'auth.failure')).toEqual(['device.update', 'device.create']);
    });

    it('purges expired enrollment tokens and records how many', async () => {
      const make = (tokenId: string, expiresAt: number) =>
        fx.registry.enrollment.create({ tokenId, secretHash: Buffer.alloc(32), uses: 1, expiresAt, idPattern: null, metadata: {} }, 'admin');
      await make('expired00001', fx.clock() + 1_000);
      await make('expired00002', fx.clock() + 2_000);
      await make('stillgood001', fx.clock() + DAY);
      fx.clock.advance(2_000);
      expect((await fx.registry.retention.pruneStep(POLICY, fx.clock())).enrollmentTokens).toBe(2);
      expect((await fx.registry.enrollment.list({ limit: 10 })).items.map((t) => t.tokenId)).toEqual(['stillgood001']);
      expect((await fx.registry.audit.list({ limit: 1 }))[0]).toMatchObject({ actor: 'retention', action: 'enrollment_token.purge', detail: { count: 2 } });
    });

    it('works in bounded steps', async () => {
      await refusals(50);
      fx.clock.advance(31 * DAY);
      expect((await fx.registry.retention.pruneStep(POLICY, fx.clock(), 20)).audit).toBe(20);
      expect((await fx.registry.retention.pruneStep(POLICY, fx.clock(), 20)).audit).toBe(20);
      expect((await fx.registry.retention.pruneStep(POLICY, fx.clock(), 20)).audit).toBe(10);
    });

    it.runIf(backend === 'postgres')('prunes the change feed outbox past its retention, keeping its newest row', async () => {
      for (let i = 0; i < 3; i++) await fx.registry.devices.create({ id: `out-${i}`, key: newKey().parsed }, 'admin');
      fx.clock.advance(OUTBOX_RETENTION_MS + 1);
      await fx.registry.devices.update('out-0', { blocked: true }, 'admin');
      expect((await fx.registry.retention.pruneStep(POLICY, fx.clock())).changes).toBe(3);
      expect(await fx.rows('SELECT change FROM registry_changes')).toEqual([{ change: { type: 'principal_blocked', principal: 'out-0' } }]);
      fx.clock.advance(OUTBOX_RETENTION_MS + 1);
      expect((await fx.registry.retention.pruneStep(POLICY, fx.clock())).changes).toBe(0); // the newest stays
    });
  });

  describe('startRetention', () => {
    it('runs at start and on demand, in as many steps as needed, by the injected clock', async () => {
      // more rows than one step deletes, written directly for speed
      await refusals(PRUNE_BATCH * 2 + 10);
      const pruned: unknown[] = [];
      task = startRetention(fx.registry.retention, { clock: fx.clock, policy: POLICY, intervalMs: 3_600_000, onError: (e) => pruned.push(e), onPruned: (c) => pruned.push(c) });
      // the pass started at start trims to the cap
      expect(await task.runOnce()).toMatchObject({ refusals: PRUNE_BATCH * 2 + 10 - POLICY.maxRefusals });
      fx.clock.advance(30 * DAY + 1);
      expect(await task.runOnce()).toEqual({ ...NONE, audit: POLICY.maxRefusals });
      expect(await fx.count('SELECT count(*) FROM audit_log')).toBe(0);
      expect(pruned).toEqual([
        { ...NONE, refusals: PRUNE_BATCH * 2 + 10 - POLICY.maxRefusals },
        { ...NONE, audit: POLICY.maxRefusals },
      ]);
    });

    it('refuses a policy that would keep nothing bounded', () => {
      expect(() => startRetention(fx.registry.retention, { clock: fx.clock, policy: { auditRetentionMs: 0, maxRefusals: 1 }, intervalMs: 1000, onError: () => {} })).toThrow(TypeError);
    });
  });
});
