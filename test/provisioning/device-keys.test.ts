import { createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintConnectToken } from '@latchkey/device-sdk';
import { deviceKey, problem, signJwt, startApi, type DeviceKey, type HttpFixture } from './http-fixture.ts';

/** api.md §Key history and protocol.md §Service-account API tokens. */

let fx: HttpFixture;
let lake: DeviceKey;
let kitchen: DeviceKey;
let thermo: DeviceKey;
beforeAll(async () => {
  fx = await startApi({ config: { authFailureLimit: 1000 } });
  lake = deviceKey();
  kitchen = deviceKey();
  thermo = deviceKey();
  await fx.api('POST', '/v1/devices', { id: 'thermo-1', publicKey: thermo.pem });
  await fx.api('POST', '/v1/devices', { id: 'thermo-2', publicKey: deviceKey().pem });
  await fx.api('POST', '/v1/services', { name: 'lake', publicKey: lake.pem, acl: { publish: [], subscribe: ['devices/+/telemetry/#'] } });
  await fx.api('POST', '/v1/services', { name: 'kitchen', publicKey: kitchen.pem, acl: { publish: ['devices/thermo-2/commands/#'], subscribe: ['devices/thermo-2/state'] } });
});
afterAll(() => fx.close());

const apiToken = async (name: string, key: DeviceKey, o: { audience?: string; ttlSeconds?: number; clockOffsetMs?: number } = {}) =>
  (await mintConnectToken({ subject: `svc:${name}`, privateKey: key.privateKey, audience: o.audience ?? 'latchkey:api', ttlSeconds: o.ttlSeconds ?? 300, clock: fx.clock, clockOffsetMs: o.clockOffsetMs ?? 0 })).token;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('GET /v1/devices/{id}/keys', () => {
  it('answers every credential with its key (PEM and JWK), fingerprint and validity, for the admin token', async () => {
    const res = await fx.api('GET', '/v1/devices/thermo-1/keys');
    expect(res.status).toBe(200);
    const device = (await fx.api('GET', '/v1/devices/thermo-1')).body;
    const [cred] = device.credentials;
    expect(res.body).toEqual({
      deviceId: 'thermo-1',
      keys: [{ kid: cred.kid, fingerprint: cred.fingerprint, publicKey: thermo.pem, jwk: { kty: 'EC', crv: 'P-256', x: thermo.jwk.x, y: thermo.jwk.y }, createdAt: cred.createdAt, removedAt: null, expiresAt: null }],
    });
    expect(createPublicKey(res.body.keys[0].publicKey).equals(thermo.publicKey)).toBe(true);
  });

  it("answers a service account's API token for a device its subscribe ACL covers", async () => {
    const res = await fx.api('GET', '/v1/devices/thermo-1/keys', undefined, bearer(await apiToken('lake', lake)));
    expect(res.status).toBe(200);
    expect(res.body.keys).toHaveLength(1);
    const kitchenRes = await fx.api('GET', '/v1/devices/thermo-2/keys', undefined, bearer(await apiToken('kitchen', kitchen)));
    expect(kitchenRes.status).toBe(200);
  });

  it('answers 404 for a device outside the ACL exactly as for an unknown one', async () => {
    const token = await apiToken('kitchen', kitchen);
    const outside = problem(await fx.api('GET', '/v1/devices/thermo-1/keys', undefined, bearer(token)), 404, 'device_not_found');
    const unknown = problem(await fx.api('GET', '/v1/devices/nobody-1/keys', undefined, bearer(token)), 404, 'device_not_found');
    expect(outside).toEqual(unknown);
    problem(await fx.api('GET', '/v1/devices/nobody-1/keys'), 404, 'device_not_found');
    problem(await fx.api('GET', '/v1/devices/a+b/keys'), 400, 'invalid_device_id');
  });

  it('refuses with 401 every token that is not a valid API token of a service account', async () => {
    const now = Math.floor(fx.clock() / 1000);
    const connectToken = (await mintConnectToken({ subject: 'svc:lake', privateKey: lake.privateKey, clock: fx.clock })).token;
    const deviceToken = (await mintConnectToken({ subject: 'thermo-1', privateKey: thermo.privateKey, audience: 'latchkey:api', ttlSeconds: 300, clock: fx.clock })).token;
    const refused = [
      connectToken, // aud latchkey: what the broker sees at CONNECT must not open the API
      deviceToken, // a device is no service account
      await apiToken('lake', kitchen), // another account's key
      await apiToken('lake', lake, { ttlSeconds: 301 }), // exp - iat > 300
      await apiToken('lake', lake, { clockOffsetMs: -3_600_000 }), // expired
      await apiToken('nobody', lake),
      signJwt(lake.privateKey, { sub: 'svc:lake', aud: 'latchkey:api', iat: now, exp: now + 60 }, { alg: 'ES256', typ: 'JWT', jwk: lake.jwk }),
      signJwt(lake.privateKey, { sub: 'svc:lake', aud: 'latchkey:api', iat: now, exp: now + 60 }, { alg: 'ES256', typ: 'latchkey-message+jwt' }),
      'not-a-token',
      'a.b.c',
    ];
    for (const token of refused) {
      const res = await fx.api('GET', '/v1/devices/thermo-1/keys', undefined, bearer(token));
      problem(res, 401, 'unauthorized');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    problem(await fx.api('GET', '/v1/devices/thermo-1/keys', undefined, {}), 401, 'unauthorized');
  });

  it('an API token opens no admin route', async () => {
    const token = await apiToken('lake', lake);
    for (const [method, route] of [['GET', '/v1/devices/thermo-1'], ['GET', '/v1/devices'], ['DELETE', '/v1/devices/thermo-1/credentials/x']] as const) {
      problem(await fx.api(method, route, undefined, bearer(token)), 401, 'unauthorized');
    }
  });

  it('is in the OpenAPI document with both security schemes', async () => {
    const doc = (await fx.api('GET', '/v1/openapi.json')).body;
    expect(doc.paths['/v1/devices/{id}/keys'].get.security).toEqual([{ adminToken: [] }, { serviceToken: [] }]);
    expect(doc.components.securitySchemes.serviceToken).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});

describe('refused API tokens count against the address, like wrong admin tokens', () => {
  let limited: HttpFixture;
  beforeAll(async () => {
    limited = await startApi({ config: { authFailureLimit: 3 } });
  });
  afterAll(() => limited.close());

  it('answers 429 after the limit; a valid admin token still passes', async () => {
    for (let i = 0; i < 3; i++) problem(await limited.api('GET', '/v1/devices/thermo-1/keys', undefined, bearer('a.b.c')), 401, 'unauthorized');
    problem(await limited.api('GET', '/v1/devices/thermo-1/keys', undefined, bearer('a.b.c')), 429, 'rate_limited');
    problem(await limited.api('GET', '/v1/devices/thermo-1/keys'), 404, 'device_not_found');
  });
});
