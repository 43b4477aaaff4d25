import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceKey, startApi, type HttpFixture } from './http-fixture.ts';
import { BACKENDS } from '../registry/registry-fixture.ts';

describe.each(BACKENDS)('services API on %s', (backend) => {
  let fx: HttpFixture;
  beforeAll(async () => {
    fx = await startApi({ backend });
  });
  afterAll(() => fx.close());

  const acl = { publish: ['devices/+/commands/#'], subscribe: ['devices/+/telemetry/#', 'devices/+/state'] };

  describe('service accounts (api.md §Service accounts)', () => {
    it('creates, lists, gets and deletes a service account', async () => {
      const created = await fx.api('POST', '/v1/services', { name: 'dashboard', publicKey: deviceKey().pem, acl });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name: 'dashboard', principal: 'svc:dashboard', acl });
      expect(created.body.credentials).toHaveLength(1);
      expect(await fx.registry.findPrincipal('svc:dashboard')).toMatchObject({ kind: 'service', acl });
      expect((await fx.api('GET', '/v1/services')).body.services.map((s: { name: string }) => s.name)).toEqual(['dashboard']);
      expect((await fx.api('GET', '/v1/services/dashboard')).body).toMatchObject({ name: 'dashboard' });
      expect((await fx.api('DELETE', '/v1/services/dashboard')).status).toBe(204);
      await fx.refused(() => fx.api('GET', '/v1/services/dashboard'), 404, 'service_not_found');
      await fx.refused(() => fx.api('DELETE', '/v1/services/dashboard'), 404, 'service_not_found');
    });

    it('refuses a duplicate name, a key in use by a device, bad names and bad ACL filters', async () => {
      const k = deviceKey();
      await fx.api('POST', '/v1/services', { name: 'rules-engine', publicKey: deviceKey().pem, acl });
      await fx.refused(() => fx.api('POST', '/v1/services', { name: 'rules-engine', publicKey: deviceKey().pem, acl }), 409, 'service_exists');
      await fx.api('POST', '/v1/devices', { id: 'svc-key-owner', publicKey: k.pem });
      await fx.refused(() => fx.api('POST', '/v1/services', { name: 'thief', publicKey: k.jwk, acl }), 409, 'key_in_use');
      for (const name of ['Dash', 'ab', 'svc:dash', 'dash/x', `d'; --`, '']) {
        await fx.refused(() => fx.api('POST', '/v1/services', { name, publicKey: deviceKey().pem, acl }), 400, 'invalid_service_name');
      }
      await fx.refused(() => fx.api('GET', '/v1/services/Bad+Name'), 400, 'invalid_service_name');
      for (const bad of [['devices/#/x'], ['devices/a+/b'], [''], ['a\u0000b']]) {
        await fx.refused(
          () => fx.api('POST', '/v1/services', { name: 'acl-test', publicKey: deviceKey().pem, acl: { publish: [], subscribe: bad } }),
          400,
          bad[0] === '' ? 'validation_failed' : 'invalid_topic_filter',
        );
      }
      await fx.refused(() => fx.api('POST', '/v1/services', { name: 'acl-test', publicKey: deviceKey().pem, acl: { publish: [] } }), 400, 'validation_failed');
      await fx.refused(
        () => fx.api('POST', '/v1/services', { name: 'acl-test', publicKey: deviceKey().pem, acl: { publish: 'devices/#', subscribe: [] } }),
        400,
        'validation_failed',
      );
    });
  });
});
