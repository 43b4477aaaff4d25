import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCertFactory, type CertFactory } from '../helpers/certs.ts';
import { ADMIN, deviceKey, problem, startApi, type HttpFixture } from './http-fixture.ts';
import { BACKENDS } from '../registry/registry-fixture.ts';

describe.each(BACKENDS)('devices API on %s', (backend) => {
  let fx: HttpFixture;
  let certs: CertFactory;
  beforeAll(async () => {
    fx = await startApi({ backend, config: { authFailureLimit: 0 } }); // throttling has its own test
    certs = createCertFactory();
  });
  afterAll(async () => {
    await fx.close();
    certs.cleanup();
  });

  let n = 0;
  const uid = (p = 'dev') => `${p}-${++n}`;

  describe('POST /v1/devices', () => {
    it('registers a device from an SPKI PEM, a JWK and an X.509 certificate', async () => {
      const pem = await fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().pem, metadata: { site: 'a' } });
      expect(pem.status).toBe(201);
      expect(pem.body).toMatchObject({ blocked: false, metadata: { site: 'a' }, config: { version: 0 }, status: { connected: false } });
      expect(pem.body.credentials).toHaveLength(1);
      const jwk = await fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().jwk });
      expect(jwk.status).toBe(201);
      const cert = certs.selfSigned({ key: 'p256', days: 5 });
      const x509 = await fx.api('POST', '/v1/devices', { id: uid(), publicKey: cert.pem });
      expect(x509.status).toBe(201);
      expect(x509.body.credentials[0].expiresAt).toBeGreaterThan(fx.clock());
      // never any secret or key material in the resource
      expect(JSON.stringify(pem.body)).not.toMatch(/BEGIN|"x":|spki/i);
    });

    it('refuses a duplicate id (409 device_exists) and the same key in another format (409 key_in_use)', async () => {
      const k = deviceKey();
      const id = uid();
      expect((await fx.api('POST', '/v1/devices', { id, publicKey: k.pem })).status).toBe(201);
      await fx.refused(() => fx.api('POST', '/v1/devices', { id, publicKey: deviceKey().pem }), 409, 'device_exists');
      await fx.refused(() => fx.api('POST', '/v1/devices', { id: uid(), publicKey: k.jwk }), 409, 'key_in_use');
      await fx.refused(() => fx.api('POST', '/v1/devices', { id: uid(), publicKey: JSON.stringify(k.jwk) }), 409, 'key_in_use');
      await fx.refused(() => fx.api('POST', '/v1/devices', { id: uid(), publicKey: k.pem }), 409, 'key_in_use');
    });

    it('reads expiresAt as RFC 3339, epoch seconds or epoch ms, and refuses anything else unchanged', async () => {
      const ms = Math.floor(fx.clock() / 1000) * 1000 + 86_400_000;
      for (const input of [new Date(ms).toISOString(), new Date(ms).toISOString().replace('.000Z', '+00:00'), ms / 1000, ms]) {
        const ok = await fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().pem, expiresAt: input });
        expect(ok.status, String(input)).toBe(201);
        expect(ok.body.credentials[0].expiresAt, String(input)).toBe(ms);
      }
      for (const bad of ['tomorrow', '1700000000000', '2030-01-01', '2030-13-45T00:00:00Z', 1.5, -1, true, { at: ms }]) {
        await fx.refused(() => fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().pem, expiresAt: bad }), 400, 'validation_failed');
      }
    });

    it('refuses calendar dates that do not exist instead of rolling them over (issue 16, finding 8)', async () => {
      const year = new Date(fx.clock()).getUTCFullYear() + 2;
      const leap = year % 4 === 0 ? year : year + (4 - (year % 4)); // a leap year (no century in range)
      for (const impossible of [
        `${year + (year % 4 === 0 ? 1 : 0)}-02-29T00:00:00Z`, // not a leap year
        `${year}-02-30T00:00:00Z`,
        `${year}-04-31T00:00:00Z`,
        `${year}-00-10T00:00:00Z`,
        `${year}-06-00T00:00:00Z`,
        `${year}-06-10T24:00:00Z`,
        `${year}-06-10T23:60:00Z`,
        `${year}-06-10T23:59:60Z`,
        `${year}-06-10T12:00:00+24:00`,
        `${year}-06-10T12:00:00+05:60`,
      ]) {
        const body = await fx.refused(() => fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().pem, expiresAt: impossible }), 400, 'validation_failed');
        expect(body.detail).toContain('expiresAt');
      }
      // the same dates that do exist are accepted, offsets and fractions included
      for (const [input, iso] of [
        [`${leap}-02-29T00:00:00Z`, `${leap}-02-29T00:00:00.000Z`],
        [`${year}-04-30T23:59:59.5+02:00`, `${year}-04-30T21:59:59.500Z`],
        [`${year}-12-31 23:59:59z`, `${year}-12-31T23:59:59.000Z`],
      ] as const) {
        const ok = await fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().pem, expiresAt: input });
        expect(ok.status, input).toBe(201);
        expect(new Date(ok.body.credentials[0].expiresAt).toISOString(), input).toBe(iso);
      }
      // credentials and service accounts read expiresAt the same way
      const id = uid();
      await fx.api('POST', '/v1/devices', { id, publicKey: deviceKey().pem });
      await fx.refused(() => fx.api('POST', `/v1/devices/${id}/credentials`, { publicKey: deviceKey().pem, expiresAt: `${year}-02-30T00:00:00Z` }), 400, 'validation_failed');
      await fx.refused(
        () => fx.api('POST', '/v1/services', { name: 'date-svc', publicKey: deviceKey().pem, expiresAt: `${year}-02-30T00:00:00Z`, acl: { publish: [], subscribe: [] } }),
        400,
        'validation_failed',
      );
    });

    it('takes an explicit expiresAt (epoch ms) and refuses one in the past', async () => {
      const expiresAt = fx.clock() + 3_600_000;
      const ok = await fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().pem, expiresAt });
      expect(ok.body.credentials[0].expiresAt).toBe(expiresAt);
      await fx.refused(() => fx.api('POST', '/v1/devices', { id: uid(), publicKey: deviceKey().pem, expiresAt: fx.clock() - 1 }), 400, 'validation_failed');
    });
  });

  describe('GET /v1/devices', () => {
    it('pages with an opaque cursor and filters by blocked', async () => {
      const local = await startApi();
      try {
        for (let i = 0; i < 5; i++) await local.api('POST', '/v1/devices', { id: `page-${i}`, publicKey: deviceKey().pem });
        await local.api('PATCH', '/v1/devices/page-2', { blocked: true });
        const p1 = await local.api('GET', '/v1/devices?limit=2');
        expect(p1.body.devices.map((d: { id: string }) => d.id)).toEqual(['page-0', 'page-1']);
        expect(p1.body.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
        const p2 = await local.api('GET', `/v1/devices?limit=2&cursor=${p1.body.nextCursor}`);
        const p3 = await local.api('GET', `/v1/devices?limit=2&cursor=${p2.body.nextCursor}`);
        expect(p3.body).toMatchObject({ devices: [{ id: 'page-4' }], nextCursor: null });
        const blocked = await local.api('GET', '/v1/devices?blocked=true');
        expect(blocked.body.devices.map((d: { id: string }) => d.id)).toEqual(['page-2']);
        expect((await local.api('GET', '/v1/devices?blocked=false')).body.devices).toHaveLength(4);
        problem(await local.api('GET', '/v1/devices?limit=0'), 400, 'validation_failed');
        problem(await local.api('GET', '/v1/devices?limit=abc'), 400, 'validation_failed');
        problem(await local.api('GET', '/v1/devices?blocked=yes'), 400, 'validation_failed');
        problem(await local.api('GET', '/v1/devices?cursor=%27%3B--'), 400, 'validation_failed');
        problem(await local.api('GET', '/v1/devices?cursor=Zm9v'), 400, 'validation_failed');
      } finally {
        await local.close();
      }
    });
  });

  describe('GET/PATCH/DELETE /v1/devices/{id}', () => {
    it('gets, blocks, unblocks, replaces metadata and deletes', async () => {
      const id = uid();
      await fx.api('POST', '/v1/devices', { id, publicKey: deviceKey().pem, metadata: { a: 1 } });
      expect((await fx.api('GET', `/v1/devices/${id}`)).body).toMatchObject({ id, metadata: { a: 1 } });
      expect((await fx.api('PATCH', `/v1/devices/${id}`, { blocked: true })).body).toMatchObject({ blocked: true, metadata: { a: 1 } });
      expect((await fx.api('PATCH', `/v1/devices/${id}`, { blocked: false, metadata: { b: 2 } })).body).toMatchObject({
        blocked: false,
        metadata: { b: 2 },
      });
      const del = await fx.api('DELETE', `/v1/devices/${id}`);
      expect(del.status).toBe(204);
      await fx.refused(() => fx.api('GET', `/v1/devices/${id}`), 404, 'device_not_found');
      await fx.refused(() => fx.api('PATCH', `/v1/devices/${id}`, { blocked: true }), 404, 'device_not_found');
      await fx.refused(() => fx.api('DELETE', `/v1/devices/${id}`), 404, 'device_not_found');
    });

    it('refuses an empty or unknown PATCH and wrong types', async () => {
      const id = uid();
      await fx.api('POST', '/v1/devices', { id, publicKey: deviceKey().pem });
      await fx.refused(() => fx.api('PATCH', `/v1/devices/${id}`, {}), 400, 'validation_failed');
      await fx.refused(() => fx.api('PATCH', `/v1/devices/${id}`, { blocked: 'true' }), 400, 'validation_failed');
      await fx.refused(() => fx.api('PATCH', `/v1/devices/${id}`, { blocked: 1 }), 400, 'validation_failed');
      await fx.refused(() => fx.api('PATCH', `/v1/devices/${id}`, { metadata: [] }), 400, 'validation_failed');
      await fx.refused(() => fx.api('PATCH', `/v1/devices/${id}`, { metadata: { big: 'x'.repeat(5000) } }), 400, 'validation_failed');
      await fx.refused(() => fx.api('PATCH', `/v1/devices/${id}`, { id: 'other-id' }), 400, 'validation_failed');
    });
  });

  describe('credentials', () => {
    it('adds up to 3 credentials (409 credential_limit past 3) and removes them', async () => {
      const id = uid();
      const first = await fx.api('POST', '/v1/devices', { id, publicKey: deviceKey().pem });
      const second = await fx.api('POST', `/v1/devices/${id}/credentials`, { publicKey: deviceKey().jwk });
      expect(second.status).toBe(201);
      expect(second.body).toMatchObject({ kid: expect.any(String), fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/), expiresAt: null });
      expect((await fx.api('POST', `/v1/devices/${id}/credentials`, { publicKey: deviceKey().pem, expiresAt: fx.clock() + 1000 })).status).toBe(201);
      await fx.refused(() => fx.api('POST', `/v1/devices/${id}/credentials`, { publicKey: deviceKey().pem }), 409, 'credential_limit');
      const kid = first.body.credentials[0].kid as string;
      expect((await fx.api('DELETE', `/v1/devices/${id}/credentials/${kid}`)).status).toBe(204);
      await fx.refused(() => fx.api('DELETE', `/v1/devices/${id}/credentials/${kid}`), 404, 'credential_not_found');
      await fx.refused(() => fx.api('DELETE', `/v1/devices/${id}/credentials/no'kid`), 404, 'credential_not_found');
      expect((await fx.api('GET', `/v1/devices/${id}`)).body.credentials).toHaveLength(2);
    });

    it('refuses unknown devices and keys already in use', async () => {
      const k = deviceKey();
      const id = uid();
      await fx.api('POST', '/v1/devices', { id, publicKey: k.pem });
      await fx.refused(() => fx.api('POST', '/v1/devices/nobody-here/credentials', { publicKey: deviceKey().pem }), 404, 'device_not_found');
      await fx.refused(() => fx.api('DELETE', '/v1/devices/nobody-here/credentials/abc'), 404, 'device_not_found');
      await fx.refused(() => fx.api('POST', `/v1/devices/${id}/credentials`, { publicKey: k.jwk }), 409, 'key_in_use');
    });
  });

  describe('POST /v1/devices:batch', () => {
    it('creates every device in one go', async () => {
      const devices = Array.from({ length: 20 }, () => ({ id: uid('batch'), publicKey: deviceKey().pem }));
      const res = await fx.api('POST', '/v1/devices:batch', { devices });
      expect(res.status).toBe(201);
      expect(res.body.created).toEqual(devices.map((d) => d.id));
    });

    it('is all-or-nothing and names every bad item by index', async () => {
      const taken = deviceKey();
      const takenId = uid();
      await fx.api('POST', '/v1/devices', { id: takenId, publicKey: taken.pem });
      const dup = deviceKey();
      const devices = [
        { id: uid('ok'), publicKey: deviceKey().pem },
        { id: 'bad/id', publicKey: deviceKey().pem },
        { id: uid('ok'), publicKey: 'garbage' },
        { id: takenId, publicKey: deviceKey().pem },
        { id: uid('ok'), publicKey: taken.jwk },
        { id: uid('ok'), publicKey: dup.pem },
        { id: uid('ok'), publicKey: dup.jwk },
        { id: uid('ok') },
        'not an object',
        { id: uid('ok'), publicKey: deviceKey().pem },
      ];
      const body = await fx.refused(() => fx.api('POST', '/v1/devices:batch', { devices }), 400, 'batch_rejected');
      expect(body.errors.map((e: { index: number; code: string }) => [e.index, e.code])).toEqual([
        [1, 'invalid_device_id'],
        [2, 'invalid_public_key'],
        [3, 'device_exists'],
        [4, 'key_in_use'],
        [6, 'key_in_use'],
        [7, 'validation_failed'],
        [8, 'validation_failed'],
      ]);
      for (const e of body.errors) expect(e.detail).toEqual(expect.any(String));
    });

    it('refuses an empty batch, a missing list and more than 10,000 items', async () => {
      await fx.refused(() => fx.api('POST', '/v1/devices:batch', { devices: [] }), 400, 'validation_failed');
      await fx.refused(() => fx.api('POST', '/v1/devices:batch', {}), 400, 'validation_failed');
      await fx.refused(() => fx.api('POST', '/v1/devices:batch', { devices: {} }), 400, 'validation_failed');
      await fx.refused(() => fx.api('POST', '/v1/devices:batch', { devices: new Array(10_001).fill({}) }), 400, 'validation_failed');
    });
  });

  describe('admin authentication', () => {
    const routes: Array<[string, string, unknown?]> = [
      ['POST', '/v1/devices', { id: 'auth-1', publicKey: 'x' }],
      ['POST', '/v1/devices:batch', { devices: [] }],
      ['GET', '/v1/devices'],
      ['GET', '/v1/devices/auth-1'],
      ['PATCH', '/v1/devices/auth-1', { blocked: true }],
      ['DELETE', '/v1/devices/auth-1'],
      ['POST', '/v1/devices/auth-1/credentials', { publicKey: 'x' }],
      ['DELETE', '/v1/devices/auth-1/credentials/k'],
      ['POST', '/v1/devices/auth-1/commands', { name: 'x' }],
      ['PUT', '/v1/devices/auth-1/config', { config: {} }],
      ['GET', '/v1/devices/auth-1/state'],
      ['POST', '/v1/services', {}],
      ['GET', '/v1/services'],
      ['GET', '/v1/services/abc'],
      ['DELETE', '/v1/services/abc'],
      ['POST', '/v1/enrollment-tokens', { ttlSeconds: 60 }],
      ['GET', '/v1/enrollment-tokens'],
      ['DELETE', '/v1/enrollment-tokens/abcdefghijkl'],
      ['GET', '/v1/audit'],
    ];
    it.each(routes)('%s %s answers 401 unauthorized without, or with a wrong, admin token', async (method, route, body) => {
      const headerSets: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-wrong-token-123' }, { authorization: ADMIN.authorization.replace('Bearer', 'Basic') }];
      for (const headers of headerSets) {
        const res = await fx.refused(() => fx.api(method, route, body, headers), 401, 'unauthorized');
        expect(JSON.stringify(res)).not.toContain('wrong-token');
      }
    });
  });
});
