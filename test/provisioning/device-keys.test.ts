import { createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintConnectToken } from '@latchkey/device-sdk';
import { deviceKey, problem, signJwt, startApi, type DeviceKey, type HttpFixture } from './http-fixture.ts';
import { BACKENDS } from '../registry/registry-fixture.ts';

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
      keys: [{ kid: cred.kid, fingerprint: cred.fingerprint, publicKey: thermo.pem, jwk: { kty: 'EC', crv: 'P-256', x: thermo.jwk.x, y: thermo.jwk.y }, createdAt: cred.createdAt, removedAt: null, expiresAt: null, lastConnectAt: null, lastMessageAt: null, lastUsedAt: null }],
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

describe.each(BACKENDS)('credential usage over HTTP on %s (issue 15)', (backend) => {
  let h: HttpFixture;
  beforeAll(async () => {
    h = await startApi({ backend, config: { keyInUseMinutes: 60 } });
  });
  afterAll(() => h.close());

  it('shows lastUsedAt per key; a key that verified a connect within keyInUseMinutes needs force=true; the history keeps it with removedAt', async () => {
    const first = deviceKey();
    const created = (await h.api('POST', '/v1/devices', { id: 'rot-1', publicKey: first.pem })).body;
    const k1 = created.credentials[0].kid as string;
    expect(created.credentials[0]).toMatchObject({ lastConnectAt: null, lastMessageAt: null, lastUsedAt: null });
    h.clock.advance(1000);
    const k2 = (await h.api('POST', '/v1/devices/rot-1/credentials', { publicKey: deviceKey().pem })).body.kid as string;
    const usedAt = h.clock() - 30 * 60_000; // 30 minutes ago: inside the 60-minute window
    await h.registry.recordCredentialUses([{ principal: 'rot-1', kid: k1, connectAt: usedAt, messageAt: null }]);
    const device = (await h.api('GET', '/v1/devices/rot-1')).body;
    expect(device.credentials.map((c: { kid: string; lastUsedAt: number | null }) => [c.kid, c.lastUsedAt])).toEqual([[k1, usedAt], [k2, null]]);

    const refused = await h.api('DELETE', `/v1/devices/rot-1/credentials/${k1}`);
    problem(refused, 409, 'credential_in_use');
    expect((await h.api('GET', '/v1/devices/rot-1')).body.credentials).toHaveLength(2);
    problem(await h.api('DELETE', `/v1/devices/rot-1/credentials/${k1}?force=yes`), 400, 'validation_failed');
    expect((await h.api('DELETE', `/v1/devices/rot-1/credentials/${k1}?force=true`)).status).toBe(204);
    const removedAt = h.clock();
    expect((await h.api('DELETE', `/v1/devices/rot-1/credentials/${k2}`)).status).toBe(204); // never used: no force needed

    const keys = (await h.api('GET', '/v1/devices/rot-1/keys')).body.keys;
    expect(keys.map((k: { kid: string; removedAt: number | null; lastConnectAt: number | null }) => [k.kid, k.removedAt, k.lastConnectAt])).toEqual([
      [k1, removedAt, usedAt],
      [k2, removedAt, null],
    ]);
  });

  it('a key used before the window is removed without force', async () => {
    const kid = (await h.api('POST', '/v1/devices', { id: 'old-1', publicKey: deviceKey().pem })).body.credentials[0].kid as string;
    await h.api('POST', '/v1/devices/old-1/credentials', { publicKey: deviceKey().pem });
    await h.registry.recordCredentialUses([{ principal: 'old-1', kid, connectAt: h.clock() - 61 * 60_000, messageAt: null }]);
    expect((await h.api('DELETE', `/v1/devices/old-1/credentials/${kid}`)).status).toBe(204);
  });

  it('GET /v1/credentials?unusedFor lists device keys neither used nor registered within that many seconds, paged', async () => {
    const ids = ['un-a', 'un-b', 'un-c'];
    for (const id of ids) await h.api('POST', '/v1/devices', { id, publicKey: deviceKey().pem });
    h.clock.advance(31 * 86_400_000);
    await h.api('POST', '/v1/devices', { id: 'un-d', publicKey: deviceKey().pem }); // registered now
    const kidOf = async (id: string) => (await h.api('GET', `/v1/devices/${id}`)).body.credentials[0].kid as string;
    await h.registry.recordCredentialUses([{ principal: 'un-b', kid: await kidOf('un-b'), connectAt: h.clock() - 86_400_000, messageAt: null }]);
    const thirtyDays = 30 * 86_400;
    const all = (await h.api('GET', `/v1/credentials?unusedFor=${thirtyDays}`)).body;
    const listed = all.credentials.map((c: { deviceId: string }) => c.deviceId).filter((id: string) => id.startsWith('un-'));
    expect(listed).toEqual(['un-a', 'un-c']);
    expect(all.credentials[0]).toEqual({
      deviceId: expect.any(String), kid: expect.any(String), fingerprint: expect.any(String), createdAt: expect.any(Number), expiresAt: null,
      lastConnectAt: expect.toSatisfy((v: unknown) => v === null || typeof v === 'number'), lastMessageAt: null, lastUsedAt: expect.toSatisfy((v: unknown) => v === null || typeof v === 'number'),
    });
    const p1 = (await h.api('GET', `/v1/credentials?unusedFor=${thirtyDays}&limit=1`)).body;
    expect(p1.credentials).toHaveLength(1);
    const p2 = (await h.api('GET', `/v1/credentials?unusedFor=${thirtyDays}&limit=1000&cursor=${p1.nextCursor}`)).body;
    expect([...p1.credentials, ...p2.credentials]).toEqual(all.credentials);
    expect(p2.nextCursor).toBeNull();
    problem(await h.api('GET', '/v1/credentials'), 400, 'validation_failed');
    problem(await h.api('GET', '/v1/credentials?unusedFor=-1'), 400, 'validation_failed');
    problem(await h.api('GET', '/v1/credentials?unusedFor=9999999999'), 400, 'validation_failed');
    problem(await h.api('GET', `/v1/credentials?unusedFor=60&cursor=${Buffer.from('v1:nonewline').toString('base64url')}`), 400, 'validation_failed');
    expect((await h.api('GET', '/v1/credentials?unusedFor=60', undefined, {})).status).toBe(401);
  });
});
