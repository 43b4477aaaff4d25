import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryError } from '../../provisioning/src/registry/index.ts';
import { newKey, registryFixture, T0, type RegistryFixture } from './registry-fixture.ts';

let fx: RegistryFixture;
beforeEach(() => {
  fx = registryFixture();
  fx.registry.devices.create({ id: 'stat-1', key: newKey().parsed }, 'admin');
});
afterEach(() => fx.cleanup());

describe('device status (broker port)', () => {
  it('counts sessions so a takeover’s late disconnect keeps the device connected', () => {
    fx.registry.recordConnected('stat-1', T0 + 1);
    fx.registry.recordConnected('stat-1', T0 + 2); // takeover
    fx.registry.recordDisconnected('stat-1', T0 + 3); // the old session ends
    expect(fx.registry.devices.get('stat-1').status).toMatchObject({ connected: true, lastConnectedAt: T0 + 2, lastDisconnectedAt: T0 + 3 });
    fx.registry.recordDisconnected('stat-1', T0 + 4);
    fx.registry.recordDisconnected('stat-1', T0 + 5); // never below zero
    expect(fx.registry.devices.get('stat-1').status.connected).toBe(false);
    fx.registry.recordConnected('stat-1', T0 + 6);
    expect(fx.registry.devices.get('stat-1').status.connected).toBe(true);
    fx.reopen(); // no session survives a restart
    expect(fx.registry.devices.get('stat-1').status.connected).toBe(false);
  });

  it('batches lastSeenAt, never moving it backwards, ignoring unknown ids', () => {
    fx.registry.devices.create({ id: 'stat-2', key: newKey().parsed }, 'admin');
    fx.registry.recordSeen([['stat-1', T0 + 50], ['stat-2', T0 + 60], ['ghost', T0 + 70]]);
    fx.registry.recordSeen([['stat-1', T0 + 10]]);
    expect(fx.registry.devices.get('stat-1').status.lastSeenAt).toBe(T0 + 50);
    expect(fx.registry.devices.get('stat-2').status.lastSeenAt).toBe(T0 + 60);
    expect(fx.registry.devices.find('ghost')).toBeNull();
  });

  it('records lastError in batches and summaries of repeated refusals with their counts', () => {
    fx.registry.recordLastErrors([['stat-1', 'token_expired', T0 + 1], ['ghost-9', 'unknown_principal', T0 + 2]]);
    expect(fx.registry.devices.get('stat-1').status.lastError).toEqual({ code: 'token_expired', at: T0 + 1 });
    expect(fx.registry.devices.find('ghost-9')).toBeNull();
    fx.registry.recordAuthFailure({
      principal: null,
      clientId: '',
      reason: 'token_malformed',
      remoteAddress: '10.0.0.7',
      at: T0 + 3,
      repeated: { count: 41, reasons: { token_malformed: 40, unknown_principal: 1 }, since: T0 },
    });
    expect(fx.registry.audit.list({ limit: 1 })[0]).toMatchObject({
      action: 'auth.failure',
      target: null,
      detail: { reason: 'token_malformed', remoteAddress: '10.0.0.7', repeated: 41, reasons: { token_malformed: 40, unknown_principal: 1 }, since: T0 },
    });
  });

  it('records an auth failure as lastError and in the audit log, for unknown principals too', () => {
    fx.registry.recordAuthFailure({ principal: 'stat-1', clientId: 'stat-1', reason: 'signature_invalid', remoteAddress: '10.0.0.1', at: T0 + 9 });
    fx.registry.recordAuthFailure({ principal: null, clientId: 'bad/id', reason: 'client_id_invalid', remoteAddress: null, at: T0 + 10 });
    fx.registry.recordAuthFailure({ principal: 'ghost-1', clientId: 'ghost-1', reason: 'unknown_principal', remoteAddress: null, at: T0 + 11 });
    expect(fx.registry.devices.get('stat-1').status.lastError).toEqual({ code: 'signature_invalid', at: T0 + 9 });
    const audit = fx.registry.audit.list({ limit: 10 }).filter((a) => a.action === 'auth.failure');
    expect(audit.map((a) => [a.target, a.detail.reason])).toEqual([
      ['ghost-1', 'unknown_principal'],
      [null, 'client_id_invalid'],
      ['stat-1', 'signature_invalid'],
    ]);
    expect(fx.registry.audit.list({ limit: 10, target: 'stat-1' }).map((a) => a.action)).toEqual(['auth.failure', 'device.create']);
  });
});

describe('batched session events (recordSessionEvents)', () => {
  const sequence = (deviceId: string) =>
    [
      { deviceId, type: 'connected', at: T0 + 1 },
      { deviceId, type: 'connected', at: T0 + 2 }, // takeover
      { deviceId, type: 'disconnected', at: T0 + 3 }, // the old session ends
      { deviceId, type: 'disconnected', at: T0 + 4 },
      { deviceId, type: 'disconnected', at: T0 + 5 }, // never below zero
      { deviceId, type: 'connected', at: T0 + 6 },
    ] as const;

  it('has the same effect as one recordConnected/recordDisconnected per event, in order', () => {
    fx.registry.devices.create({ id: 'stat-2', key: newKey().parsed }, 'admin');
    for (const e of sequence('stat-1')) {
      if (e.type === 'connected') fx.registry.recordConnected(e.deviceId, e.at);
      else fx.registry.recordDisconnected(e.deviceId, e.at);
    }
    fx.registry.recordSessionEvents(sequence('stat-2'));
    const batched = fx.registry.devices.get('stat-2').status;
    expect(batched).toEqual(fx.registry.devices.get('stat-1').status);
    expect(batched).toMatchObject({ connected: true, lastConnectedAt: T0 + 6, lastDisconnectedAt: T0 + 5, lastSeenAt: T0 + 6 });
    // a takeover inside one batch: still connected after the old session's late disconnect
    fx.registry.recordSessionEvents([
      { deviceId: 'stat-2', type: 'connected', at: T0 + 7 },
      { deviceId: 'stat-2', type: 'disconnected', at: T0 + 8 },
      { deviceId: 'stat-2', type: 'disconnected', at: T0 + 9 },
    ]);
    expect(fx.registry.devices.get('stat-2').status).toMatchObject({ connected: false, lastConnectedAt: T0 + 7, lastDisconnectedAt: T0 + 9 });
    // from 0 sessions: a stray disconnect, two sessions, one ends → still connected
    fx.registry.recordSessionEvents(
      (['disconnected', 'connected', 'connected', 'disconnected'] as const).map((type, i) => ({ deviceId: 'stat-2', type, at: T0 + 10 + i })),
    );
    expect(fx.registry.devices.get('stat-2').status).toMatchObject({ connected: true, lastConnectedAt: T0 + 12, lastDisconnectedAt: T0 + 13 });
  });

  it('matches per-event writes for random interleavings of several devices, from any starting count', () => {
    let seed = 42; // a fixed LCG: a failure reproduces
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return (seed >>> 16) % n; // the high bits: an LCG's low bits cycle quickly
    };
    const ids = ['a', 'b'];
    for (const id of ids) {
      fx.registry.devices.create({ id: `pe-${id}`, key: newKey().parsed }, 'admin');
      fx.registry.devices.create({ id: `ba-${id}`, key: newKey().parsed }, 'admin');
    }
    let at = T0;
    for (let batch = 0; batch < 150; batch++) {
      const events = Array.from({ length: rand(12) }, () => ({
        id: ids[rand(ids.length)] as string,
        type: rand(2) === 0 ? ('connected' as const) : ('disconnected' as const),
        at: ++at,
      }));
      for (const e of events) {
        if (e.type === 'connected') fx.registry.recordConnected(`pe-${e.id}`, e.at);
        else fx.registry.recordDisconnected(`pe-${e.id}`, e.at);
      }
      fx.registry.recordSessionEvents(events.map((e) => ({ deviceId: `ba-${e.id}`, type: e.type, at: e.at })));
      for (const id of ids) expect(fx.registry.devices.get(`ba-${id}`).status).toEqual(fx.registry.devices.get(`pe-${id}`).status);
    }
    expect(ids.some((id) => fx.registry.devices.get(`ba-${id}`).status.connected)).toBe(true);
  });

  it('ignores unknown and deleted devices without losing the rest of the batch', () => {
    fx.registry.devices.create({ id: 'gone-1', key: newKey().parsed }, 'admin');
    fx.registry.devices.delete('gone-1', 'admin');
    fx.registry.recordSessionEvents([
      { deviceId: 'ghost', type: 'connected', at: T0 + 1 },
      { deviceId: 'gone-1', type: 'connected', at: T0 + 2 },
      { deviceId: 'stat-1', type: 'connected', at: T0 + 3 },
      { deviceId: 'gone-1', type: 'disconnected', at: T0 + 4 },
    ]);
    expect(fx.registry.devices.get('stat-1').status).toMatchObject({ connected: true, lastConnectedAt: T0 + 3 });
    expect(fx.registry.devices.find('ghost')).toBeNull();
    expect(fx.registry.devices.find('gone-1')).toBeNull();
    expect(() => fx.registry.recordSessionEvents([])).not.toThrow();
  });

  it('writes the batch in one transaction: a failure mid-batch leaves nothing of it', () => {
    const errors: unknown[] = [];
    fx.reopen({ onInternalError: (e) => errors.push(e) });
    fx.registry.devices.create({ id: 'poison-1', key: newKey().parsed }, 'admin');
    // a second connection installs a trigger that makes the third event's write fail
    const other = new Database(fx.file);
    other.exec(`CREATE TRIGGER poison BEFORE INSERT ON device_status WHEN NEW.device_id = 'poison-1' BEGIN SELECT RAISE(ABORT, 'poison'); END`);
    other.close();
    fx.registry.recordSessionEvents([
      { deviceId: 'stat-1', type: 'connected', at: T0 + 1 },
      { deviceId: 'stat-1', type: 'disconnected', at: T0 + 2 },
      { deviceId: 'poison-1', type: 'connected', at: T0 + 3 },
    ]);
    expect(errors).toHaveLength(1); // reported, not thrown into the broker
    expect(fx.registry.devices.get('stat-1').status).toMatchObject({ connected: false, lastConnectedAt: null, lastDisconnectedAt: null });
  });

  it('refuses a malformed batch as caller misuse, writing nothing', () => {
    const bad = [
      { deviceId: 'stat-1', type: 'connected', at: T0 + 1 },
      { deviceId: 'stat-1', type: 'reconnected', at: T0 + 2 },
    ] as unknown as Parameters<typeof fx.registry.recordSessionEvents>[0];
    expect(() => fx.registry.recordSessionEvents(bad)).toThrow(TypeError);
    expect(() => fx.registry.recordSessionEvents(null as never)).toThrow(TypeError);
    expect(() => fx.registry.recordSessionEvents([{ deviceId: 'stat-1', type: 'connected', at: Number.NaN }])).toThrow(TypeError);
    expect(fx.registry.devices.get('stat-1').status.lastConnectedAt).toBeNull();
  });
});

describe('config and state', () => {
  it('bumps config versions and enforces ifVersion', () => {
    expect(fx.registry.configState.setConfig('stat-1', { mode: 'eco' }, undefined, 'admin')).toBe(1);
    expect(fx.registry.configState.setConfig('stat-1', { mode: 'heat' }, 1, 'admin')).toBe(2);
    expect(() => fx.registry.configState.setConfig('stat-1', { mode: 'off' }, 1, 'admin')).toThrow(
      expect.objectContaining({ code: 'config_version_mismatch' }),
    );
    expect(fx.registry.configState.getConfig('stat-1')).toMatchObject({ version: 2, config: { mode: 'heat' } });
    expect(fx.registry.devices.get('stat-1').config).toEqual({ version: 2 });
    expect(() => fx.registry.configState.setConfig('nobody', {}, undefined, 'admin')).toThrow(RegistryError);
  });

  it('keeps the last state of known devices only', () => {
    expect(fx.registry.configState.getState('stat-1')).toBeNull();
    fx.registry.saveState('stat-1', '{"t":20}', T0 + 1);
    fx.registry.saveState('stat-1', '{"t":21}', T0 + 2);
    fx.registry.saveState('ghost', '{"t":1}', T0 + 3);
    expect(fx.registry.configState.getState('stat-1')).toEqual({ state: { t: 21 }, reportedAt: T0 + 2 });
    expect(fx.registry.configState.getState('ghost')).toBeNull();
  });
});
