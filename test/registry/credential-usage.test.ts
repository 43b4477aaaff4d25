import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, newKey, registryErrorCode, registryFixture, T0, type RegistryFixture } from './registry-fixture.ts';

/** Issue 15: when each credential was last used, the key history, and removing a key in use. */
describe.each(BACKENDS)('credential usage and key history on %s', (backend) => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture(backend);
  });
  afterEach(() => fx.cleanup());

  async function deviceWithTwoKeys(id: string) {
    const first = await fx.registry.devices.create({ id, key: newKey().parsed }, 'admin');
    fx.clock.advance(1000);
    const second = await fx.registry.devices.addCredential(id, newKey().parsed, null, 'admin');
    return { k1: first.credentials[0]!.kid, k2: second.kid };
  }

  const usage = async (id: string) =>
    Object.fromEntries((await fx.registry.devices.get(id)).credentials.map((c) => [c.kid, { connect: c.lastConnectAt, message: c.lastMessageAt, used: c.lastUsedAt }]));

  it('records connects and signed messages per credential, in one batch, never moving a time backwards', async () => {
    const { k1, k2 } = await deviceWithTwoKeys('thermo-1');
    expect(await usage('thermo-1')).toEqual({ [k1]: { connect: null, message: null, used: null }, [k2]: { connect: null, message: null, used: null } });
    await fx.registry.recordCredentialUses([
      { principal: 'thermo-1', kid: k1, connectAt: T0 + 5000, messageAt: null },
      { principal: 'thermo-1', kid: k2, connectAt: null, messageAt: T0 + 7000 },
      { principal: 'ghost', kid: 'nope', connectAt: T0, messageAt: T0 }, // unknown: ignored
    ]);
    expect(await usage('thermo-1')).toEqual({ [k1]: { connect: T0 + 5000, message: null, used: T0 + 5000 }, [k2]: { connect: null, message: T0 + 7000, used: T0 + 7000 } });
    // an older batch (a slow node) never moves a time backwards; a null keeps what is stored
    await fx.registry.recordCredentialUses([{ principal: 'thermo-1', kid: k1, connectAt: T0 + 1000, messageAt: T0 + 9000 }]);
    expect((await usage('thermo-1'))[k1]).toEqual({ connect: T0 + 5000, message: T0 + 9000, used: T0 + 9000 });
  });

  it('records a service account credential’s connects too', async () => {
    const svc = await fx.registry.services.create({ name: 'lake', key: newKey().parsed, acl: { publish: [], subscribe: ['devices/#'] } }, 'admin');
    await fx.registry.recordCredentialUses([{ principal: 'svc:lake', kid: svc.credentials[0]!.kid, connectAt: T0 + 3000, messageAt: null }]);
    expect((await fx.registry.services.get('lake')).credentials[0]).toMatchObject({ lastConnectAt: T0 + 3000, lastUsedAt: T0 + 3000 });
  });

  it('keeps a removed credential in the key history, with its usage and removal time; a late usage batch lands there', async () => {
    const { k1, k2 } = await deviceWithTwoKeys('thermo-2');
    await fx.registry.recordCredentialUses([{ principal: 'thermo-2', kid: k1, connectAt: T0 + 2000, messageAt: null }]);
    fx.clock.advance(60_000);
    await fx.registry.devices.removeCredential('thermo-2', k1, 'admin');
    // the broker's batch of uses from before the removal arrives after it
    await fx.registry.recordCredentialUses([{ principal: 'thermo-2', kid: k1, connectAt: null, messageAt: T0 + 3000 }]);
    const history = await fx.registry.devices.keyHistory('thermo-2');
    expect(history.map((h) => [h.kid, h.removedAt, h.lastConnectAt, h.lastMessageAt])).toEqual([
      [k1, T0 + 61_000, T0 + 2000, T0 + 3000],
      [k2, null, null, null],
    ]);
    expect(history.every((h) => h.spkiDer instanceof Uint8Array && h.spkiDer.length === 91)).toBe(true);
    expect((await fx.registry.devices.get('thermo-2')).credentials.map((c) => c.kid)).toEqual([k2]);
    expect(await registryErrorCode(() => fx.registry.devices.keyHistory('nobody'))).toBe('device_not_found');
    // deleting the device deletes its history
    await fx.registry.devices.delete('thermo-2', 'admin');
    expect(await fx.count('SELECT count(*) FROM credential_history WHERE principal = ?', 'thermo-2')).toBe(0);
  });

  it('refuses to remove a credential that verified a connect since inUseSince, unless forced; nothing half-done', async () => {
    const { k1, k2 } = await deviceWithTwoKeys('thermo-3');
    await fx.registry.recordCredentialUses([{ principal: 'thermo-3', kid: k1, connectAt: T0 + 10_000, messageAt: null }]);
    expect(await registryErrorCode(() => fx.registry.devices.removeCredential('thermo-3', k1, 'admin', { inUseSince: T0 + 10_000 }))).toBe('credential_in_use');
    expect((await fx.registry.devices.get('thermo-3')).credentials).toHaveLength(2);
    expect(await fx.registry.devices.keyHistory('thermo-3')).toHaveLength(2);
    // used before the window: removable; never used: removable
    await fx.registry.devices.removeCredential('thermo-3', k2, 'admin', { inUseSince: T0 + 10_000 });
    await fx.registry.devices.removeCredential('thermo-3', k1, 'admin', { inUseSince: T0 + 10_000, force: true });
    expect((await fx.registry.devices.get('thermo-3')).credentials).toEqual([]);
    const audit = await fx.rows("SELECT detail FROM audit_log WHERE action = 'credential.remove' ORDER BY seq");
    expect(audit.map((r) => (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail))).toEqual([{ kid: k2 }, { kid: k1, force: true }]);
    expect(await registryErrorCode(() => fx.registry.devices.removeCredential('thermo-3', k1, 'admin'))).toBe('credential_not_found');
  });

  it('lists device credentials neither used nor registered since a time, paged by (device, kid)', async () => {
    const a = await fx.registry.devices.create({ id: 'a-1', key: newKey().parsed }, 'admin'); // never used, registered at T0
    const b = await fx.registry.devices.create({ id: 'b-1', key: newKey().parsed }, 'admin');
    const c = await fx.registry.devices.create({ id: 'c-1', key: newKey().parsed }, 'admin');
    await fx.registry.services.create({ name: 'svc', key: newKey().parsed, acl: { publish: [], subscribe: [] } }, 'admin'); // services are not listed
    fx.clock.advance(40 * 86_400_000);
    const fresh = await fx.registry.devices.addCredential('a-1', newKey().parsed, null, 'admin'); // registered now: not unused
    await fx.registry.recordCredentialUses([
      { principal: 'b-1', kid: b.credentials[0]!.kid, connectAt: T0 + 35 * 86_400_000, messageAt: null }, // used 5 days ago
      { principal: 'c-1', kid: c.credentials[0]!.kid, connectAt: T0 + 1000, messageAt: null }, // used 40 days ago
    ]);
    const before = fx.clock() - 30 * 86_400_000;
    const all = await fx.registry.devices.unusedCredentials(before, { limit: 10 });
    expect(all.map((u) => [u.deviceId, u.kid, u.lastUsedAt])).toEqual([
      ['a-1', a.credentials[0]!.kid, null],
      ['c-1', c.credentials[0]!.kid, T0 + 1000],
    ]);
    expect(all.some((u) => u.kid === fresh.kid)).toBe(false);
    const page1 = await fx.registry.devices.unusedCredentials(before, { limit: 1 });
    const page2 = await fx.registry.devices.unusedCredentials(before, { limit: 1, after: { deviceId: page1[0]!.deviceId, kid: page1[0]!.kid } });
    expect([...page1, ...page2]).toEqual(all);
  });
});
