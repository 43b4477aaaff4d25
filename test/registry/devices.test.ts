import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_CREDENTIALS, parsePublicKey } from '@latchkey/device-sdk/protocol';
import { isRegistryError, RegistryError } from '../../provisioning/src/registry/index.ts';
import { createCertFactory, type CertFactory } from '../helpers/certs.ts';
import { BACKENDS, newKey, registryErrorCode, registryFixture, T0, type RegistryFixture } from './registry-fixture.ts';

describe.each(BACKENDS)('registry on %s', (backend) => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture(backend);
  });
  afterEach(() => fx.cleanup());

  describe('devices', () => {
    it('creates, gets, lists, updates and deletes a device', async () => {
      const k = newKey();
      const created = await fx.registry.devices.create({ id: 'thermo-1', key: k.parsed, metadata: { room: 'hall' } }, 'admin');
      expect(created).toMatchObject({ id: 'thermo-1', blocked: false, metadata: { room: 'hall' }, createdAt: T0, config: { version: 0 } });
      expect(created.credentials).toEqual([
        { kid: expect.any(String), fingerprint: k.parsed.fingerprint, createdAt: T0, expiresAt: null, lastConnectAt: null, lastMessageAt: null, lastUsedAt: null },
      ]);
      expect(await fx.registry.devices.get('thermo-1')).toEqual(created);

      const updated = await fx.registry.devices.update('thermo-1', { blocked: true, metadata: { room: 'attic' } }, 'admin');
      expect(updated).toMatchObject({ blocked: true, metadata: { room: 'attic' } });
      await fx.registry.devices.delete('thermo-1', 'admin');
      expect(await fx.registry.devices.find('thermo-1')).toBeNull();
      expect(await registryErrorCode(() => fx.registry.devices.get('thermo-1'))).toBe('device_not_found');
      expect(await registryErrorCode(() => fx.registry.devices.delete('thermo-1', 'admin'))).toBe('device_not_found');
      expect(await registryErrorCode(() => fx.registry.devices.update('thermo-1', { blocked: false }, 'admin'))).toBe('device_not_found');
    });

    it('refuses a duplicate id without touching the first device', async () => {
      const first = await fx.registry.devices.create({ id: 'dup-1', key: newKey().parsed }, 'admin');
      expect(await registryErrorCode(() => fx.registry.devices.create({ id: 'dup-1', key: newKey().parsed }, 'admin'))).toBe('device_exists');
      expect(await fx.registry.devices.get('dup-1')).toEqual(first);
    });

    it('pages through devices by id with an exclusive cursor and a blocked filter', async () => {
      for (let i = 0; i < 7; i++) await fx.registry.devices.create({ id: `dev-${i}`, key: newKey().parsed }, 'admin');
      await fx.registry.devices.update('dev-3', { blocked: true }, 'admin');
      const p1 = await fx.registry.devices.list({ limit: 3 });
      expect(p1.items.map((d) => d.id)).toEqual(['dev-0', 'dev-1', 'dev-2']);
      expect(p1.next).toBe('dev-2');
      const p2 = await fx.registry.devices.list({ limit: 3, after: p1.next });
      const p3 = await fx.registry.devices.list({ limit: 3, after: p2.next });
      expect(p3.items.map((d) => d.id)).toEqual(['dev-6']);
      expect(p3.next).toBeNull();
      expect((await fx.registry.devices.list({ limit: 10, blocked: true })).items.map((d) => d.id)).toEqual(['dev-3']);
      expect((await fx.registry.devices.list({ limit: 10, blocked: false })).items).toHaveLength(6);
    });

    it('stores ids and metadata with quotes and SQL verbatim (prepared statements only)', async () => {
      const evil = { note: `'); DROP TABLE devices; --`, q: '"\\' };
      await fx.registry.devices.create({ id: 'a.b_c-d', key: newKey().parsed, metadata: evil }, 'admin');
      expect((await fx.registry.devices.get('a.b_c-d')).metadata).toEqual(evil);
      expect(await fx.registry.devices.find(`x' OR '1'='1`)).toBeNull();
    });
  });

  describe('credentials', () => {
    it(`allows at most ${MAX_CREDENTIALS} credentials per device`, async () => {
      await fx.registry.devices.create({ id: 'rot-1', key: newKey().parsed }, 'admin');
      await fx.registry.devices.addCredential('rot-1', newKey().parsed, null, 'admin');
      await fx.registry.devices.addCredential('rot-1', newKey().parsed, null, 'admin');
      const extra = newKey().parsed;
      expect(await registryErrorCode(() => fx.registry.devices.addCredential('rot-1', extra, null, 'admin'))).toBe('credential_limit');
      const creds = (await fx.registry.devices.get('rot-1')).credentials;
      expect(creds).toHaveLength(3);
      // Removing one makes room again.
      await fx.registry.devices.removeCredential('rot-1', creds[0]!.kid, 'admin');
      await fx.registry.devices.addCredential('rot-1', extra, null, 'admin');
      expect((await fx.registry.devices.get('rot-1')).credentials.map((c) => c.fingerprint)).toContain(extra.fingerprint);
    });

    it('refuses unknown devices and credentials with precise codes', async () => {
      expect(await registryErrorCode(() => fx.registry.devices.addCredential('nobody', newKey().parsed, null, 'admin'))).toBe('device_not_found');
      await fx.registry.devices.create({ id: 'dev-a', key: newKey().parsed }, 'admin');
      expect(await registryErrorCode(() => fx.registry.devices.removeCredential('dev-a', 'nokid', 'admin'))).toBe('credential_not_found');
      expect(await registryErrorCode(() => fx.registry.devices.removeCredential('nobody', 'nokid', 'admin'))).toBe('device_not_found');
      // a kid of another device is not found on this one
      const other = await fx.registry.devices.create({ id: 'dev-b', key: newKey().parsed }, 'admin');
      expect(await registryErrorCode(() => fx.registry.devices.removeCredential('dev-a', other.credentials[0]!.kid, 'admin'))).toBe('credential_not_found');
    });

    describe('key_in_use across formats', () => {
      let certs: CertFactory;
      beforeEach(() => {
        certs = createCertFactory();
      });
      afterEach(() => certs.cleanup());

      it('refuses the same key as SPKI PEM, JWK and X.509 certificate, on devices and services', async () => {
        const cert = certs.selfSigned({ key: 'p256' });
        const asPem = parsePublicKey(cert.publicKeyPem);
        const asJwk = parsePublicKey(cert.publicKey.export({ format: 'jwk' }));
        const asCert = parsePublicKey(cert.pem);
        expect(new Set([asPem.format, asJwk.format, asCert.format])).toEqual(new Set(['spki', 'jwk', 'x509']));

        await fx.registry.devices.create({ id: 'owner-1', key: asCert }, 'admin');
        for (const key of [asPem, asJwk, asCert]) {
          expect(await registryErrorCode(() => fx.registry.devices.create({ id: 'thief-1', key }, 'admin'))).toBe('key_in_use');
          expect(await registryErrorCode(() => fx.registry.devices.addCredential('owner-1', key, null, 'admin'))).toBe('key_in_use');
          expect(await registryErrorCode(() => fx.registry.services.create({ name: 'dash', key, acl: { publish: [], subscribe: [] } }, 'admin'))).toBe('key_in_use');
        }
        expect(await fx.registry.devices.find('thief-1')).toBeNull();
        expect(await fx.registry.services.find('dash')).toBeNull();
        // and a service's key cannot be reused by a device
        const svcKey = newKey();
        await fx.registry.services.create({ name: 'dash', key: svcKey.parsed, acl: { publish: [], subscribe: [] } }, 'admin');
        expect(await registryErrorCode(() => fx.registry.devices.create({ id: 'thief-2', key: parsePublicKey(svcKey.publicKey.export({ format: 'jwk' })) }, 'admin'))).toBe('key_in_use');
      });

      it("takes a certificate's notAfter as expiry unless an explicit earlier expiresAt is given", async () => {
        const cert = certs.selfSigned({ key: 'p256', days: 10 });
        const parsed = parsePublicKey(cert.pem);
        expect(parsed.expiresAt).toBeGreaterThan(T0);
        const a = await fx.registry.devices.create({ id: 'cert-1', key: parsed }, 'admin');
        expect(a.credentials[0]!.expiresAt).toBe(parsed.expiresAt);
        await fx.registry.devices.delete('cert-1', 'admin');
        const earlier = T0 + 60_000;
        const b = await fx.registry.devices.create({ id: 'cert-2', key: parsed, expiresAt: earlier }, 'admin');
        expect(b.credentials[0]!.expiresAt).toBe(earlier);
        await fx.registry.devices.delete('cert-2', 'admin');
        const later = parsed.expiresAt! + 86_400_000;
        const c = await fx.registry.devices.create({ id: 'cert-3', key: parsed, expiresAt: later }, 'admin');
        expect(c.credentials[0]!.expiresAt).toBe(parsed.expiresAt);
        // a plain key takes the explicit expiry; the broker sees it in findPrincipal
        await fx.registry.devices.addCredential('cert-3', newKey().parsed, earlier, 'admin');
        const principal = (await fx.registry.findPrincipal('cert-3'))!;
        expect(principal.credentials.map((x) => x.expiresAt).sort()).toEqual([earlier, parsed.expiresAt].sort());
      });
    });

    it('deleting a device frees its key for reuse', async () => {
      const k = newKey();
      await fx.registry.devices.create({ id: 'old-1', key: k.parsed }, 'admin');
      await fx.registry.devices.delete('old-1', 'admin');
      expect((await fx.registry.devices.create({ id: 'new-1', key: k.parsed }, 'admin')).id).toBe('new-1');
    });
  });

  describe('batch create', () => {
    it('is all-or-nothing and names every refused item by index', async () => {
      const taken = newKey();
      await fx.registry.devices.create({ id: 'exists-1', key: taken.parsed }, 'admin');
      const shared = newKey();
      const batch = [
        { id: 'b-0', key: newKey().parsed },
        { id: 'exists-1', key: newKey().parsed }, // device_exists
        { id: 'b-2', key: taken.parsed }, // key_in_use (another device)
        { id: 'b-3', key: shared.parsed },
        { id: 'b-4', key: shared.parsed }, // key_in_use (inside the batch)
        { id: 'b-0', key: newKey().parsed }, // device_exists (inside the batch)
      ];
      try {
        await fx.registry.devices.createMany(batch, 'admin');
        expect.unreachable();
      } catch (e) {
        expect(isRegistryError(e, 'batch_rejected')).toBe(true);
        expect((e as RegistryError).items).toEqual([
          { index: 1, code: 'device_exists' },
          { index: 2, code: 'key_in_use' },
          { index: 4, code: 'key_in_use' },
          { index: 5, code: 'device_exists' },
        ]);
      }
      expect((await fx.registry.devices.list({ limit: 100 })).items.map((d) => d.id)).toEqual(['exists-1']);
      expect((await fx.registry.audit.list({ limit: 100 })).map((a) => a.action)).toEqual(['device.create']);
    });

    it('creates every device of a valid batch in one audit entry', async () => {
      const batch = Array.from({ length: 50 }, (_, i) => ({ id: `fleet-${String(i).padStart(3, '0')}`, key: newKey().parsed }));
      expect(await fx.registry.devices.createMany(batch, 'admin')).toEqual(batch.map((b) => b.id));
      expect((await fx.registry.devices.list({ limit: 100 })).items).toHaveLength(50);
      expect(await fx.registry.audit.list({ limit: 10 })).toMatchObject([{ action: 'device.batch_create', detail: { count: 50 } }]);
    });

    it('refuses more than 10,000 items as caller misuse', async () => {
      await expect(fx.registry.devices.createMany(new Array(10_001), 'admin')).rejects.toThrow(TypeError);
    });
  });

  describe('errors', () => {
    it('never leaks a driver error: a closed database is internal_error without detail', async () => {
      await fx.registry.close();
      try {
        await fx.registry.devices.create({ id: 'late-1', key: newKey().parsed }, 'admin');
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(RegistryError);
        expect((e as RegistryError).code).toBe('internal_error');
        expect((e as RegistryError).message).not.toMatch(/sqlite|database|devices/i);
      }
      // the broker-facing port rejects too: a database failure is never "unknown principal" (CONNACK 4)
      await expect(fx.registry.findPrincipal('late-1')).rejects.toMatchObject({ code: 'internal_error' });
      await expect(fx.registry.recordSessionEvents([{ deviceId: 'late-1', type: 'connected', at: T0 }])).rejects.toMatchObject({ code: 'internal_error' });
      expect(await fx.registry.ping()).toBe(false);
    });
  });

  describe('batch create with caller-refused items', () => {
    it('checks the remaining items, names their failures and stores nothing', async () => {
      const k = newKey();
      await fx.registry.devices.create({ id: 'pre-1', key: k.parsed }, 'admin');
      try {
        await fx.registry.devices.createMany([{ id: 'ok-1', key: newKey().parsed }, null, { id: 'pre-1', key: newKey().parsed }], 'admin');
        expect.unreachable();
      } catch (e) {
        expect(e).toMatchObject({ code: 'batch_rejected', items: [{ index: 2, code: 'device_exists' }] });
      }
      await expect(fx.registry.devices.createMany([null], 'admin')).rejects.toMatchObject({ code: 'batch_rejected', items: [] });
      expect(await fx.registry.devices.find('ok-1')).toBeNull();
    });
  });
});
