import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BrokerRegistryPort } from '../../broker/src/registry-port.ts';
import { BACKENDS, newKey, registryFixture, type RegistryFixture } from './registry-fixture.ts';

describe.each(BACKENDS)('registry on %s', (backend) => {
  let fx: RegistryFixture;
  beforeEach(async () => {
    fx = await registryFixture(backend);
  });
  afterEach(() => fx.cleanup());

  describe('BrokerRegistryPort', () => {
    it('is implemented structurally by the registry (checked by tsc) and answers findPrincipal', async () => {
      const _check: BrokerRegistryPort = fx.registry;
      const k = newKey();
      const d = await fx.registry.devices.create({ id: 'port-1', key: k.parsed }, 'admin');
      await fx.registry.services.create(
        { name: 'dashboard', key: newKey().parsed, acl: { publish: ['devices/+/commands/#'], subscribe: ['devices/+/telemetry/#'] } },
        'admin',
      );
      const device = (await _check.findPrincipal('port-1'))!;
      expect(device).toMatchObject({ kind: 'device', principal: 'port-1', blocked: false, acl: null });
      expect(device.credentials).toHaveLength(1);
      expect(device.credentials[0]!.kid).toBe(d.credentials[0]!.kid);
      expect(Buffer.from(device.credentials[0]!.spkiDer).equals(k.parsed.spkiDer)).toBe(true);
      expect(await _check.findPrincipal('svc:dashboard')).toMatchObject({
        kind: 'service',
        blocked: false,
        acl: { publish: ['devices/+/commands/#'], subscribe: ['devices/+/telemetry/#'] },
      });
      expect(await _check.findPrincipal('nobody')).toBeNull();
      expect(await _check.findPrincipal('svc:nobody')).toBeNull();
      expect(await _check.findPrincipal('')).toBeNull();
    });
  });
});
