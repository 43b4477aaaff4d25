/**
 * The change feed on PostgreSQL (docs/operations.md §Change feed): outbox rows written in the
 * transaction of the change under an advisory lock, pg_notify, and a listener that replays from its
 * last seen sequence number on every reconnect, or resynchronizes in full when the outbox was pruned
 * past it. Real PostgreSQL (this file's schema); the listener's connection is cut with
 * pg_terminate_backend.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRegistry, type FeedState, type Registry, type RegistryChange } from '../../provisioning/src/registry/index.ts';
import { BACKENDS, newKey, postgresTarget, registryFixture, withPostgres, type RegistryFixture } from './registry-fixture.ts';

/** Cuts the change feed connections on this file's schema (`latchkey-feed:<schema>` in pg_stat_activity). */
const cutFeed = () =>
  withPostgres(async (c) => {
    const { rows } = await c.query('SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity WHERE application_name = $1', [`latchkey-feed:${postgresTarget().schema}`]);
    return rows.filter((r) => r.cut === true).length;
  });

const waitUntil = async (predicate: () => boolean, timeoutMs = 10_000): Promise<void> => {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe.runIf(BACKENDS.includes('postgres'))('the change feed on PostgreSQL', () => {
  let fx: RegistryFixture;
  let seen: RegistryChange[];
  let states: FeedState[];
  const others: Registry[] = [];
  beforeEach(async () => {
    fx = await registryFixture('postgres');
    seen = [];
    states = [];
    fx.registry.onChange((c) => seen.push(c));
    fx.registry.feed.onState((s) => states.push(s));
  });
  afterEach(async () => {
    for (const r of others.splice(0)) await r.close();
    await fx.cleanup();
    await withPostgres((c) => c.query('DROP TRIGGER IF EXISTS slow_outbox ON registry_changes; DROP FUNCTION IF EXISTS slow_outbox()'));
  });

  /** Another process's registry on the same database (another latchkey node). */
  const otherNode = async (more: Parameters<RegistryFixture['options']>[0] = {}) => {
    const r = await openRegistry(fx.location, fx.options({ resetSessions: false, ...more }));
    others.push(r);
    return r;
  };

  it('delivers another process’s changes, in commit order, once each; sync() waits for them', async () => {
    const b = await otherNode();
    await b.devices.create({ id: 'far-1', key: newKey().parsed }, 'admin');
    await b.devices.update('far-1', { blocked: true }, 'admin');
    await b.devices.delete('far-1', 'admin');
    await fx.registry.feed.sync();
    expect(seen).toEqual([
      { type: 'principal_created', principal: 'far-1' },
      { type: 'principal_blocked', principal: 'far-1' },
      { type: 'principal_deleted', principal: 'far-1' },
    ]);
    expect(fx.registry.feed.downForMs()).toBe(0);
  });

  it('without the outbox lock a change that took a lower sequence number but committed later is skipped forever', async () => {
    // the hazard the advisory lock exists for, shown with the real listener and two raw writers
    await withPostgres(async (slow) => {
      await withPostgres(async (fast) => {
        await slow.query('BEGIN');
        await slow.query(`INSERT INTO registry_changes (at, change) VALUES (0, '{"type":"principal_blocked","principal":"slow-1"}')`);
        await fast.query('BEGIN');
        await fast.query(`INSERT INTO registry_changes (at, change) VALUES (0, '{"type":"principal_blocked","principal":"fast-1"}')`);
        await fast.query('COMMIT');
        await fx.registry.feed.sync();
        await slow.query('COMMIT');
      });
    });
    await fx.registry.feed.sync();
    expect(seen.map((c) => c.principal)).toEqual(['fast-1']); // slow-1 is never delivered
  });

  it('with the lock (every registry write) the slower transaction is delivered too, in commit order', async () => {
    for (const id of ['slow-1', 'fast-1']) await fx.registry.devices.create({ id, key: newKey().parsed }, 'admin');
    seen.length = 0;
    // the slow write sleeps after taking its sequence number, before it commits
    await withPostgres((c) =>
      c.query(`CREATE FUNCTION slow_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.change->>'principal' = 'slow-1' THEN PERFORM pg_sleep(0.5); END IF; RETURN NEW; END $$;
               CREATE TRIGGER slow_outbox AFTER INSERT ON registry_changes FOR EACH ROW EXECUTE FUNCTION slow_outbox()`),
    );
    const b = await otherNode();
    const slowDone = b.devices.update('slow-1', { blocked: true }, 'admin').then(() => performance.now());
    await new Promise((r) => setTimeout(r, 150));
    const fastStarted = performance.now();
    const fastDone = fx.registry.devices.update('fast-1', { blocked: true }, 'admin').then(() => performance.now());
    const [slowAt, fastAt] = await Promise.all([slowDone, fastDone]);
    expect(fastStarted).toBeLessThan(slowAt); // the writes overlapped
    expect(fastAt).toBeGreaterThan(slowAt);
    await fx.registry.feed.sync();
    expect(seen).toEqual([
      { type: 'principal_blocked', principal: 'slow-1' },
      { type: 'principal_blocked', principal: 'fast-1' },
    ]);
  });

  it('replays what it missed after its connection was cut: every change once, in order', async () => {
    const b = await otherNode();
    const written: string[] = [];
    const writer = (async () => {
      for (let i = 0; i < 40; i++) {
        const id = `w-${String(i).padStart(2, '0')}`;
        await b.devices.create({ id, key: newKey().parsed }, 'admin');
        written.push(id);
      }
    })();
    await waitUntil(() => written.length >= 5);
    expect(await cutFeed()).toBe(2); // this registry's, and the writer's own

    await waitUntil(() => states.includes('down'));
    expect(fx.registry.feed.downForMs()).toBeGreaterThan(0);
    await writer;
    await waitUntil(() => states.includes('resynced'));
    await fx.registry.feed.sync();
    expect(fx.registry.feed.downForMs()).toBe(0);
    expect(seen.map((c) => c.principal)).toEqual(written);
    expect(states).toEqual(['down', 'resynced']);
  });

  it('resynchronizes in full when the outbox was pruned past it, skipping what it cannot replay', async () => {
    // a listener that retries slowly: the outbox moves on while it is away
    const a = await otherNode({ postgres: { ...fx.options().postgres, feed: { minRetryMs: 3000, maxRetryMs: 3000 } } });
    const aSeen: string[] = [];
    const aStates: FeedState[] = [];
    a.onChange((c) => aSeen.push(c.principal));
    a.feed.onState((s) => aStates.push(s));
    await fx.registry.devices.create({ id: 'before-1', key: newKey().parsed }, 'admin');
    await a.feed.sync();
    expect(await cutFeed()).toBe(2); // the fixture's registry's and a's
    for (const id of ['gone-1', 'gone-2', 'gone-3']) await fx.registry.devices.create({ id, key: newKey().parsed }, 'admin');
    // retention pruned everything but the newest row (docs/operations.md §Change feed)
    await withPostgres((c) => c.query('DELETE FROM registry_changes WHERE seq < (SELECT max(seq) FROM registry_changes)'));
    await waitUntil(() => aStates.includes('full_resync'));
    expect(aStates).toEqual(['down', 'full_resync']);
    expect(aSeen).toEqual(['before-1']); // nothing replayed: its cache owner re-checks instead
    await fx.registry.devices.create({ id: 'after-1', key: newKey().parsed }, 'admin');
    await a.feed.sync();
    expect(aSeen).toEqual(['before-1', 'after-1']);
  });
});
