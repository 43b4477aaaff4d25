import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceQuerySql } from '../../provisioning/src/registry/device-query.ts';
import { AUTH_FAILURES_BY_MINUTE_SQL, TOP_REFUSED_SQL } from '../../provisioning/src/registry/fleet-stats.ts';
import { RefusalLog } from '../../broker/src/auth/refusal-log.ts';
import type { AuthFailureCode } from '@latchkey/device-sdk/protocol';
import { RECENT_ERROR_MS, type DeviceQuery } from '../../provisioning/src/registry/index.ts';
import { BACKENDS, newKey, registryFixture, type RegistryFixture } from './registry-fixture.ts';

describe.each(BACKENDS)('console queries on %s', (backend) => {
let fx: RegistryFixture;
beforeEach(async () => {
  fx = await registryFixture(backend);
});
afterEach(() => fx.cleanup());

const ids = async (q: DeviceQuery) => (await fx.registry.devices.query(q)).items.map((d) => d.id);

/** Devices a-00 .. a-09 and b-00 .. b-04; a-01, a-02 connected; a-03 blocked; b-01 refused. */
async function seed(): Promise<void> {
  const make = (p: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${p}-${String(i).padStart(2, '0')}`, key: newKey().parsed }));
  await fx.registry.devices.createMany([...make('a', 10), ...make('b', 5)], 'admin');
  await fx.registry.recordSessionEvents([
    { deviceId: 'a-01', type: 'connected', at: fx.clock() },
    { deviceId: 'a-02', type: 'connected', at: fx.clock() },
  ]);
  await fx.registry.devices.update('a-03', { blocked: true }, 'admin');
  await fx.registry.recordAuthFailure({ principal: 'b-01', clientId: 'b-01', reason: 'token_expired', remoteAddress: '127.0.0.1', at: fx.clock() });
}

describe('devices.query: filters and keyset paging', () => {
  it('pages forwards and backwards by id with next/prev keys', async () => {
    await seed();
    const p1 = await fx.registry.devices.query({ limit: 6 });
    expect(p1.items.map((d) => d.id)).toEqual(['a-00', 'a-01', 'a-02', 'a-03', 'a-04', 'a-05']);
    expect(p1).toMatchObject({ prev: null, next: 'a-05' });
    const p2 = await fx.registry.devices.query({ limit: 6, after: p1.next });
    expect(p2.items.map((d) => d.id)).toEqual(['a-06', 'a-07', 'a-08', 'a-09', 'b-00', 'b-01']);
    expect(p2).toMatchObject({ prev: 'a-06', next: 'b-01' });
    const p3 = await fx.registry.devices.query({ limit: 6, after: p2.next });
    expect(p3.items.map((d) => d.id)).toEqual(['b-02', 'b-03', 'b-04']);
    expect(p3).toMatchObject({ prev: 'b-02', next: null });
    const back = await fx.registry.devices.query({ limit: 6, before: p3.prev });
    expect(back.items.map((d) => d.id)).toEqual(p2.items.map((d) => d.id));
    expect(back).toMatchObject({ prev: 'a-06', next: 'b-01' });
    expect(await fx.registry.devices.query({ limit: 6, before: back.prev })).toMatchObject({ prev: null, next: 'a-05' });
  });

  it('filters by status: connected, offline (not blocked), blocked, recent error', async () => {
    await seed();
    expect(await ids({ limit: 50, status: 'connected' })).toEqual(['a-01', 'a-02']);
    expect(await ids({ limit: 50, status: 'blocked' })).toEqual(['a-03']);
    expect(await ids({ limit: 50, status: 'error' })).toEqual(['b-01']);
    const offline = await ids({ limit: 50, status: 'offline' });
    expect(offline).toHaveLength(12);
    expect(offline).not.toContain('a-01');
    expect(offline).not.toContain('a-03');
    // a refusal followed by an accepted connect is no longer "a recent error"
    fx.clock.advance(1000);
    await fx.registry.recordSessionEvents([{ deviceId: 'b-01', type: 'connected', at: fx.clock() }]);
    expect(await ids({ limit: 50, status: 'error' })).toEqual([]);
    // nor is one older than RECENT_ERROR_MS
    await fx.registry.recordAuthFailure({ principal: 'b-02', clientId: 'b-02', reason: 'signature_invalid', remoteAddress: null, at: fx.clock() });
    expect(await ids({ limit: 50, status: 'error' })).toEqual(['b-02']);
    fx.clock.advance(RECENT_ERROR_MS + 1);
    expect(await ids({ limit: 50, status: 'error' })).toEqual([]);
  });

  it('filters by id prefix, combined with a status and with paging', async () => {
    await seed();
    expect(await ids({ limit: 50, prefix: 'b-0' })).toEqual(['b-00', 'b-01', 'b-02', 'b-03', 'b-04']);
    expect(await ids({ limit: 50, prefix: 'a-0', status: 'connected' })).toEqual(['a-01', 'a-02']);
    expect(await ids({ limit: 50, prefix: 'b', status: 'connected' })).toEqual([]);
    expect(await ids({ limit: 50, prefix: 'zz' })).toEqual([]);
    const p = await fx.registry.devices.query({ limit: 2, prefix: 'b-', after: 'b-00' });
    expect(p.items.map((d) => d.id)).toEqual(['b-01', 'b-02']);
    expect(p).toMatchObject({ prev: 'b-01', next: 'b-02' });
    expect(await fx.registry.devices.query({ limit: 2, prefix: 'b-', before: 'b-01' })).toMatchObject({ prev: null, next: 'b-00' });
  });

  // SQLite's plans (the embedded default); PostgreSQL has the same partial indexes (migration 3) and its planner's choice
  it.runIf(backend === 'sqlite')('every filter walks an index in id order: no full-table sort', async () => {
    await seed();
    const db = new Database(fx.file, { readonly: true });
    try {
      for (const status of ['all', 'connected', 'offline', 'blocked', 'error'] as const) {
        for (const dir of ['asc', 'desc'] as const) {
          const sql = deviceQuerySql(status, dir, 'page');
          const params = [...(status === 'error' ? [0] : []), '', '', '\u007f', 51];
          const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql.sqlite}`).all(...params) as Array<{ detail: string }>)
            .map((r) => r.detail)
            .join(' | ');
          expect(plan, `${status} ${dir}`).not.toMatch(/TEMP B-TREE/);
          expect(plan.split(' | ')[0], `${status} ${dir}`).toMatch(/USING (PRIMARY KEY|INDEX|COVERING INDEX)/);
        }
      }
    } finally {
      db.close();
    }
  });

  it('refuses a limit out of range and after with before', async () => {
    await expect(fx.registry.devices.query({ limit: 0 })).rejects.toThrow(TypeError);
    await expect(fx.registry.devices.query({ limit: 1001 })).rejects.toThrow(TypeError);
    await expect(fx.registry.devices.query({ limit: 5, after: 'a', before: 'b' })).rejects.toThrow(TypeError);
    await expect(fx.registry.devices.query({ limit: 5, status: 'nope' as never })).rejects.toThrow(TypeError);
  });
});

describe('stats', () => {
  it('counts connected devices, reads statuses by id and counts refusals by minute and reason', async () => {
    await seed();
    expect(await fx.registry.stats.countConnected()).toBe(2);
    expect(await fx.registry.stats.countDevices()).toBe(15);
    const st = await fx.registry.stats.statusOf(['a-02', 'a-01', 'a-03', 'nobody']);
    expect(st.map((s) => [s.deviceId, s.connected, s.blocked])).toEqual([
      ['a-01', true, false],
      ['a-02', true, false],
      ['a-03', false, true],
    ]);
    const t = fx.clock();
    const minute = Math.floor(t / 60_000) * 60_000;
    await fx.registry.recordAuthFailure({ principal: 'b-02', clientId: 'b-02', reason: 'token_expired', remoteAddress: null, at: t });
    await fx.registry.recordAuthFailure({ principal: null, clientId: '#bad', reason: 'client_id_invalid', remoteAddress: null, at: t });
    fx.clock.advance(60_000);
    await fx.registry.recordAuthFailure({ principal: 'b-02', clientId: 'b-02', reason: 'token_expired', remoteAddress: null, at: fx.clock() });
    const counts = await fx.registry.stats.authFailuresByMinute(minute - 3_600_000, fx.clock() + 1);
    expect(counts).toEqual([
      { minute, reason: 'client_id_invalid', count: 1 },
      { minute, reason: 'token_expired', count: 2 },
      { minute: minute + 60_000, reason: 'token_expired', count: 1 },
    ]);
    expect(await fx.registry.stats.topRefused(minute, fx.clock() + 1, 5)).toEqual([
      { principal: 'b-02', count: 2 },
      { principal: 'b-01', count: 1 },
      { principal: null, count: 1 },
    ]);
  });
});


describe('refusal counts over aggregated records (issue 16: the broker writes summaries of repeats)', () => {
  /** Refusals as the broker reports them: through its RefusalLog, drained on its timer into the registry. */
  function refuse(log: RefusalLog, n: number, o: { principal: string | null; reason: AuthFailureCode; address: string }): void {
    for (let i = 0; i < n; i++) {
      log.add({ principal: o.principal, clientId: o.principal ?? `#junk-${i}`, reason: o.reason, remoteAddress: o.address, at: fx.clock() }, true);
      fx.clock.advance(100);
    }
  }
  async function drain(log: RefusalLog): Promise<void> {
    const { records, lastErrors } = log.drain(fx.clock());
    for (const r of records) await fx.registry.recordAuthFailure(r);
    await fx.registry.recordLastErrors(lastErrors);
  }

  it('sums summaries by reason in the minute their window began, and by principal', async () => {
    await seed(); // b-01: one token_expired refusal, a minute before the flood
    fx.clock.advance(60_000);
    const minute = Math.floor(fx.clock() / 60_000) * 60_000;
    const log = new RefusalLog();
    // a flood from one address against b-02: 30 expired tokens and 12 bad signatures
    refuse(log, 30, { principal: 'b-02', reason: 'token_expired', address: '10.0.0.9' });
    refuse(log, 12, { principal: 'b-02', reason: 'signature_invalid', address: '10.0.0.9' });
    // another address sweeping ids that do not parse
    refuse(log, 15, { principal: null, reason: 'client_id_invalid', address: '10.0.0.7' });
    await drain(log); // the records written so far: one per new (address, principal, reason)
    const written = await fx.registry.stats.authFailuresByMinute(minute - 60_000, minute + 120_000);
    expect(written.reduce((n, c) => n + c.count, 0)).toBeLessThan(1 + 30 + 12 + 15); // repeats are still only counted
    fx.clock.advance(60_000);
    await drain(log); // their windows ended: the summaries are written, a minute after they began
    const total = (cs: { count: number }[]) => cs.reduce((n, c) => n + c.count, 0);
    const counts = await fx.registry.stats.authFailuresByMinute(minute - 60_000, minute + 180_000);
    expect(total(counts)).toBe(1 + 30 + 12 + 15); // every refusal, once
    const byReason = (reason: string) => total(counts.filter((c) => c.reason === reason));
    expect([byReason('token_expired'), byReason('signature_invalid'), byReason('client_id_invalid')]).toEqual([31, 12, 15]);
    // the flood happened within its first minute or two, not when the summaries were written
    expect(counts.every((c) => c.minute <= minute + 60_000)).toBe(true);
    expect(total(counts.filter((c) => c.minute >= minute))).toBe(30 + 12 + 15);
    expect(await fx.registry.stats.authFailuresByMinute(minute + 120_000, minute + 180_000)).toEqual([]);
    expect(await fx.registry.stats.topRefused(minute - 60_000, minute + 180_000, 5)).toEqual([
      { principal: 'b-02', count: 42 },
      { principal: null, count: 15 },
      { principal: 'b-01', count: 1 },
    ]);
    // the minute before the flood sees only b-01's one refusal
    expect(await fx.registry.stats.authFailuresByMinute(minute - 60_000, minute)).toEqual([{ minute: minute - 60_000, reason: 'token_expired', count: 1 }]);
    expect(await fx.registry.stats.topRefused(minute - 60_000, minute, 5)).toEqual([{ principal: 'b-01', count: 1 }]);
    expect((await fx.registry.devices.get('b-02')).status.lastError?.code).toBe('signature_invalid');
  });

  it.runIf(backend === 'sqlite')('reads the refusals of a range through the (action, at) index', async () => {
    const db = new Database(fx.file, { readonly: true });
    try {
      for (const sql of [AUTH_FAILURES_BY_MINUTE_SQL, TOP_REFUSED_SQL]) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql.sqlite}`).all(0, 1, 0, 1, ...(sql === TOP_REFUSED_SQL ? [5] : [])) as Array<{ detail: string }>)
          .map((r) => r.detail)
          .join(' | ');
        expect(plan).toMatch(/SEARCH audit_log USING INDEX audit_by_action_at \(action=\? AND at>\? AND at<\?\)/);
      }
    } finally {
      db.close();
    }
  });
});
});
