import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryError } from '../../provisioning/src/registry/index.ts';
import { BACKENDS, newKey, registryFixture, T0, type RegistryFixture } from './registry-fixture.ts';

describe.each(BACKENDS)('registry on %s', (backend) => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture(backend);
    await fx.registry.devices.create({ id: 'stat-1', key: newKey().parsed }, 'admin');
  });
  afterEach(() => fx.cleanup());

  describe('device status (broker port)', () => {
    it('counts sessions so a takeover’s late disconnect keeps the device connected', async () => {
      await fx.registry.recordConnected('stat-1', T0 + 1);
      await fx.registry.recordConnected('stat-1', T0 + 2); // takeover
      await fx.registry.recordDisconnected('stat-1', T0 + 3); // the old session ends
      expect((await fx.registry.devices.get('stat-1')).status).toMatchObject({ connected: true, lastConnectedAt: T0 + 2, lastDisconnectedAt: T0 + 3 });
      await fx.registry.recordDisconnected('stat-1', T0 + 4);
      await fx.registry.recordDisconnected('stat-1', T0 + 5); // never below zero
      expect((await fx.registry.devices.get('stat-1')).status.connected).toBe(false);
      await fx.registry.recordConnected('stat-1', T0 + 6);
      expect((await fx.registry.devices.get('stat-1')).status.connected).toBe(true);
      await fx.reopen(); // no session survives a restart
      expect((await fx.registry.devices.get('stat-1')).status.connected).toBe(false);
    });

    it('batches lastSeenAt, never moving it backwards, ignoring unknown ids', async () => {
      await fx.registry.devices.create({ id: 'stat-2', key: newKey().parsed }, 'admin');
      await fx.registry.recordSeen([['stat-1', T0 + 50], ['stat-2', T0 + 60], ['ghost', T0 + 70]]);
      await fx.registry.recordSeen([['stat-1', T0 + 10]]);
      expect((await fx.registry.devices.get('stat-1')).status.lastSeenAt).toBe(T0 + 50);
      expect((await fx.registry.devices.get('stat-2')).status.lastSeenAt).toBe(T0 + 60);
      expect(await fx.registry.devices.find('ghost')).toBeNull();
    });

    it('records lastError in batches and summaries of repeated refusals with their counts', async () => {
      await fx.registry.recordLastErrors([['stat-1', 'token_expired', T0 + 1], ['ghost-9', 'unknown_principal', T0 + 2]]);
      expect((await fx.registry.devices.get('stat-1')).status.lastError).toEqual({ code: 'token_expired', at: T0 + 1 });
      expect(await fx.registry.devices.find('ghost-9')).toBeNull();
      await fx.registry.recordAuthFailure({
        principal: null,
        clientId: '',
        reason: 'token_malformed',
        remoteAddress: '10.0.0.7',
        at: T0 + 3,
        repeated: { count: 41, reasons: { token_malformed: 40, unknown_principal: 1 }, since: T0 },
      });
      expect((await fx.registry.audit.list({ limit: 1 }))[0]).toMatchObject({
        action: 'auth.failure',
        target: null,
        detail: { reason: 'token_malformed', remoteAddress: '10.0.0.7', repeated: 41, reasons: { token_malformed: 40, unknown_principal: 1 }, since: T0 },
      });
    });

    it('records an auth failure as lastError and in the audit log, for unknown principals too', async () => {
      await fx.registry.recordAuthFailure({ principal: 'stat-1', clientId: 'stat-1', reason: 'signature_invalid', remoteAddress: '10.0.0.1', at: T0 + 9 });
      await fx.registry.recordAuthFailure({ principal: null, clientId: 'bad/id', reason: 'client_id_invalid', remoteAddress: null, at: T0 + 10 });
      await fx.registry.recordAuthFailure({ principal: 'ghost-1', clientId: 'ghost-1', reason: 'unknown_principal', remoteAddress: null, at: T0 + 11 });
      expect((await fx.registry.devices.get('stat-1')).status.lastError).toEqual({ code: 'signature_invalid', at: T0 + 9 });
      const audit = (await fx.registry.audit.list({ limit: 10 })).filter((a) => a.action === 'auth.failure');
      expect(audit.map((a) => [a.target, a.detail.reason])).toEqual([
        ['ghost-1', 'unknown_principal'],
        [null, 'client_id_invalid'],
        ['stat-1', 'signature_invalid'],
      ]);
      expect((await fx.registry.audit.list({ limit: 10, target: 'stat-1' })).map((a) => a.action)).toEqual(['auth.failure', 'device.create']);
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

    it('has the same effect as one recordConnected/recordDisconnected per event, in order', async () => {
      await fx.registry.devices.create({ id: 'stat-2', key: newKey().parsed }, 'admin');
      for (const e of sequence('stat-1')) {
        if (e.type === 'connected') await fx.registry.recordConnected(e.deviceId, e.at);
        else await fx.registry.recordDisconnected(e.deviceId, e.at);
      }
      await fx.registry.recordSessionEvents(sequence('stat-2'));
      const batched = (await fx.registry.devices.get('stat-2')).status;
      expect(batched).toEqual((await fx.registry.devices.get('stat-1')).status);
      expect(batched).toMatchObject({ connected: true, lastConnectedAt: T0 + 6, lastDisconnectedAt: T0 + 5, lastSeenAt: T0 + 6 });
      // a takeover inside one batch: still connected after the old session's late disconnect
      await fx.registry.recordSessionEvents([
        { deviceId: 'stat-2', type: 'connected', at: T0 + 7 },
        { deviceId: 'stat-2', type: 'disconnected', at: T0 + 8 },
        { deviceId: 'stat-2', type: 'disconnected', at: T0 + 9 },
      ]);
      expect((await fx.registry.devices.get('stat-2')).status).toMatchObject({ connected: false, lastConnectedAt: T0 + 7, lastDisconnectedAt: T0 + 9 });
      // from 0 sessions: a stray disconnect, two sessions, one ends → still connected
      await fx.registry.recordSessionEvents(
        (['disconnected', 'connected', 'connected', 'disconnected'] as const).map((type, i) => ({ deviceId: 'stat-2', type, at: T0 + 10 + i })),
      );
      expect((await fx.registry.devices.get('stat-2')).status).toMatchObject({ connected: true, lastConnectedAt: T0 + 12, lastDisconnectedAt: T0 + 13 });
    });

    it('matches per-event writes for random interleavings of several devices, from any starting count', async () => {
      let seed = 42; // a fixed LCG: a failure reproduces
      const rand = (n: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return (seed >>> 16) % n; // the high bits: an LCG's low bits cycle quickly
      };
      const ids = ['a', 'b'];
      for (const id of ids) {
        await fx.registry.devices.create({ id: `pe-${id}`, key: newKey().parsed }, 'admin');
        await fx.registry.devices.create({ id: `ba-${id}`, key: newKey().parsed }, 'admin');
      }
      let at = T0;
      for (let batch = 0; batch < 150; batch++) {
        const events = Array.from({ length: rand(12) }, () => ({
          id: ids[rand(ids.length)] as string,
          type: rand(2) === 0 ? ('connected' as const) : ('disconnected' as const),
          at: ++at,
        }));
        for (const e of events) {
          if (e.type === 'connected') await fx.registry.recordConnected(`pe-${e.id}`, e.at);
          else await fx.registry.recordDisconnected(`pe-${e.id}`, e.at);
        }
        await fx.registry.recordSessionEvents(events.map((e) => ({ deviceId: `ba-${e.id}`, type: e.type, at: e.at })));
        for (const id of ids) expect((await fx.registry.devices.get(`ba-${id}`)).status).toEqual((await fx.registry.devices.get(`pe-${id}`)).status);
      }
      const statuses = await Promise.all(ids.map((id) => fx.registry.devices.get(`ba-${id}`)));
      expect(statuses.some((d) => d.status.connected)).toBe(true);
    });

    it('ignores unknown and deleted devices without losing the rest of the batch', async () => {
      await fx.registry.devices.create({ id: 'gone-1', key: newKey().parsed }, 'admin');
      await fx.registry.devices.delete('gone-1', 'admin');
      await fx.registry.recordSessionEvents([
        { deviceId: 'ghost', type: 'connected', at: T0 + 1 },
        { deviceId: 'gone-1', type: 'connected', at: T0 + 2 },
        { deviceId: 'stat-1', type: 'connected', at: T0 + 3 },
        { deviceId: 'gone-1', type: 'disconnected', at: T0 + 4 },
      ]);
      expect((await fx.registry.devices.get('stat-1')).status).toMatchObject({ connected: true, lastConnectedAt: T0 + 3 });
      expect(await fx.registry.devices.find('ghost')).toBeNull();
      expect(await fx.registry.devices.find('gone-1')).toBeNull();
      await expect(fx.registry.recordSessionEvents([])).resolves.toBeUndefined();
    });

    it('writes the batch in one transaction: a failure mid-batch leaves nothing of it', async () => {
      await fx.registry.devices.create({ id: 'poison-1', key: newKey().parsed }, 'admin');
      // a second connection installs a trigger that makes the third event's write fail
      await fx.exec(
        backend === 'sqlite'
          ? `CREATE TRIGGER poison BEFORE INSERT ON device_status WHEN NEW.device_id = 'poison-1' BEGIN SELECT RAISE(ABORT, 'poison'); END`
          : `CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.device_id = 'poison-1' THEN RAISE EXCEPTION 'poison'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER poison BEFORE INSERT ON device_status FOR EACH ROW EXECUTE FUNCTION poison()`,
      );
      try {
        // rejected, the cause kept (the broker's DeviceStatus logs it): never a driver error
        await expect(
          fx.registry.recordSessionEvents([
            { deviceId: 'stat-1', type: 'connected', at: T0 + 1 },
            { deviceId: 'stat-1', type: 'disconnected', at: T0 + 2 },
            { deviceId: 'poison-1', type: 'connected', at: T0 + 3 },
          ]),
        ).rejects.toMatchObject({ name: 'RegistryError', code: 'internal_error' });
        expect((await fx.registry.devices.get('stat-1')).status).toMatchObject({ connected: false, lastConnectedAt: null, lastDisconnectedAt: null });
      } finally {
        if (backend === 'postgres') await fx.exec('DROP TRIGGER poison ON device_status; DROP FUNCTION poison()');
      }
    });

    it('refuses a malformed batch as caller misuse, writing nothing', async () => {
      const bad = [
        { deviceId: 'stat-1', type: 'connected', at: T0 + 1 },
        { deviceId: 'stat-1', type: 'reconnected', at: T0 + 2 },
      ] as unknown as Parameters<typeof fx.registry.recordSessionEvents>[0];
      expect(() => fx.registry.recordSessionEvents(bad)).toThrow(TypeError);
      expect(() => fx.registry.recordSessionEvents(null as never)).toThrow(TypeError);
      expect(() => fx.registry.recordSessionEvents([{ deviceId: 'stat-1', type: 'connected', at: Number.NaN }])).toThrow(TypeError);
      expect((await fx.registry.devices.get('stat-1')).status.lastConnectedAt).toBeNull();
    });
  });

  describe('config and state', () => {
    it('bumps config versions and enforces ifVersion', async () => {
      expect(await fx.registry.configState.setConfig('stat-1', { mode: 'eco' }, undefined, 'admin')).toBe(1);
      expect(await fx.registry.configState.setConfig('stat-1', { mode: 'heat' }, 1, 'admin')).toBe(2);
      await expect(fx.registry.configState.setConfig('stat-1', { mode: 'off' }, 1, 'admin')).rejects.toMatchObject({ code: 'config_version_mismatch' });
      expect(await fx.registry.configState.getConfig('stat-1')).toMatchObject({ version: 2, config: { mode: 'heat' } });
      expect((await fx.registry.devices.get('stat-1')).config).toEqual({ version: 2 });
      await expect(fx.registry.configState.setConfig('nobody', {}, undefined, 'admin')).rejects.toThrow(RegistryError);
    });

    it('keeps the last state of known devices only', async () => {
      expect(await fx.registry.configState.getState('stat-1')).toBeNull();
      await fx.registry.saveState('stat-1', '{"t":20}', T0 + 1);
      await fx.registry.saveState('stat-1', '{"t":21}', T0 + 2);
      await fx.registry.saveState('ghost', '{"t":1}', T0 + 3);
      expect(await fx.registry.configState.getState('stat-1')).toEqual({ state: { t: 21 }, reportedAt: T0 + 2 });
      expect(await fx.registry.configState.getState('ghost')).toBeNull();
      // any JSON value, kept as given (a JSON string is not parsed twice; key order stays)
      await fx.registry.saveState('stat-1', '"on"', T0 + 4);
      expect(await fx.registry.configState.getState('stat-1')).toEqual({ state: 'on', reportedAt: T0 + 4 });
      await fx.registry.saveState('stat-1', '{"z":1,"a":{"\\u0000":null}}', T0 + 5);
      expect(JSON.stringify((await fx.registry.configState.getState('stat-1'))?.state)).toBe('{"z":1,"a":{"\\u0000":null}}');
    });
  });
});
