import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RegistryChange } from '../../provisioning/src/registry/index.ts';
import { BACKENDS, newKey, registryFixture, type RegistryFixture } from './registry-fixture.ts';

describe.each(BACKENDS)('registry on %s', (backend) => {
  let fx: RegistryFixture;
  let errors: unknown[];
  beforeEach(async () => {
    errors = [];
    fx = await registryFixture(backend, { onInternalError: (e) => errors.push(e) });
  });
  afterEach(() => fx.cleanup());

  describe('change feed', () => {
    it('emits create, block, unblock, credential added/removed and delete, in order', async () => {
      const seen: RegistryChange[] = [];
      fx.registry.onChange((c) => seen.push(c));
      const d = await fx.registry.devices.create({ id: 'feed-1', key: newKey().parsed }, 'admin');
      await fx.registry.devices.update('feed-1', { blocked: true }, 'admin');
      await fx.registry.devices.update('feed-1', { blocked: true }, 'admin'); // no change, no event
      await fx.registry.devices.update('feed-1', { blocked: false }, 'admin');
      await fx.registry.devices.update('feed-1', { metadata: { a: 1 } }, 'admin'); // no event
      const c = await fx.registry.devices.addCredential('feed-1', newKey().parsed, null, 'admin');
      await fx.registry.devices.removeCredential('feed-1', d.credentials[0]!.kid, 'admin');
      await fx.registry.devices.delete('feed-1', 'admin');
      await fx.registry.services.create({ name: 'svc-one', key: newKey().parsed, acl: { publish: [], subscribe: ['#'] } }, 'admin');
      await fx.registry.services.delete('svc-one', 'admin');
      expect(seen).toEqual([
        { type: 'principal_created', principal: 'feed-1' },
        { type: 'principal_blocked', principal: 'feed-1' },
        { type: 'principal_unblocked', principal: 'feed-1' },
        { type: 'credential_added', principal: 'feed-1', kid: c.kid },
        { type: 'credential_removed', principal: 'feed-1', kid: d.credentials[0]!.kid },
        { type: 'principal_deleted', principal: 'feed-1' },
        { type: 'principal_created', principal: 'svc:svc-one' },
        { type: 'principal_deleted', principal: 'svc:svc-one' },
      ]);
    });

    it('emits principal_created for every device of a batch and every enrollment, nothing for a refused batch', async () => {
      const seen: RegistryChange[] = [];
      fx.registry.onChange((c) => seen.push(c));
      await fx.registry.devices.createMany([{ id: 'batch-1', key: newKey().parsed }, { id: 'batch-2', key: newKey().parsed }], 'admin');
      await expect(fx.registry.devices.createMany([{ id: 'batch-3', key: newKey().parsed }, { id: 'batch-1', key: newKey().parsed }], 'admin')).rejects.toThrow();
      expect(seen).toEqual([
        { type: 'principal_created', principal: 'batch-1' },
        { type: 'principal_created', principal: 'batch-2' },
      ]);
    });

    it('delivers only after commit: a listener sees the committed state, a refused write emits nothing', async () => {
      await fx.registry.devices.create({ id: 'feed-2', key: newKey().parsed }, 'admin');
      const observed: Array<Promise<boolean | undefined>> = [];
      fx.registry.onChange(() => observed.push(fx.registry.findPrincipal('feed-2').then((p) => p?.blocked)));
      await fx.registry.devices.update('feed-2', { blocked: true }, 'admin');
      // delivered before the write's promise resolved
      expect(observed).toHaveLength(1);
      await expect(fx.registry.devices.removeCredential('feed-2', 'nope', 'admin')).rejects.toThrow();
      await expect(fx.registry.devices.update('nobody', { blocked: true }, 'admin')).rejects.toThrow();
      expect(await Promise.all(observed)).toEqual([true]);
    });

    it('keeps going when a listener throws, and unsubscribes', async () => {
      const seen: string[] = [];
      fx.registry.onChange(() => {
        throw new Error('listener bug');
      });
      const off = fx.registry.onChange((c) => seen.push(c.type));
      await fx.registry.devices.create({ id: 'feed-3', key: newKey().parsed }, 'admin');
      await fx.registry.devices.update('feed-3', { blocked: true }, 'admin');
      expect(seen).toEqual(['principal_created', 'principal_blocked']);
      expect(errors).toHaveLength(2);
      off();
      await fx.registry.devices.delete('feed-3', 'admin');
      expect(seen).toEqual(['principal_created', 'principal_blocked']);
    });
  });
});
