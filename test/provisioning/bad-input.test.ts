import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceKey, startApi, type HttpFixture } from './http-fixture.ts';
import { BACKENDS } from '../registry/registry-fixture.ts';

describe.each(BACKENDS)('bad input on %s', (backend) => {
  let fx: HttpFixture;
  beforeAll(async () => {
    fx = await startApi({ backend });
  });
  afterAll(() => fx.close());

  const spki = (k: { publicKey: { export(o: object): string | Buffer } }) => k.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const jwkOf = (k: { publicKey: { export(o: object): unknown } }) => k.publicKey.export({ format: 'jwk' }) as Record<string, string>;

  describe('keys the API refuses (protocol.md §Keys)', () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const offCurve = { ...jwkOf(p256) };
    offCurve.y = Buffer.from(Buffer.from(offCurve.y!, 'base64url').map((b, i) => (i === 31 ? b ^ 1 : b))).toString('base64url');

    const cases: Array<[string, unknown, string]> = [
      ['an RSA key', spki(generateKeyPairSync('rsa', { modulusLength: 2048 })), 'unsupported_key_type'],
      ['an RSA JWK', jwkOf(generateKeyPairSync('rsa', { modulusLength: 2048 })), 'unsupported_key_type'],
      ['an Ed25519 key', spki(generateKeyPairSync('ed25519')), 'unsupported_key_type'],
      ['an Ed25519 JWK', jwkOf(generateKeyPairSync('ed25519')), 'unsupported_key_type'],
      ['a P-384 key', spki(generateKeyPairSync('ec', { namedCurve: 'P-384' })), 'unsupported_curve'],
      ['a P-384 JWK', jwkOf(generateKeyPairSync('ec', { namedCurve: 'P-384' })), 'unsupported_curve'],
      ['a secp256k1 key', spki(generateKeyPairSync('ec', { namedCurve: 'secp256k1' })), 'unsupported_curve'],
      ['a PKCS#8 private key PEM', p256.privateKey.export({ type: 'pkcs8', format: 'pem' }), 'private_key_rejected'],
      ['a SEC1 private key PEM', p256.privateKey.export({ type: 'sec1', format: 'pem' }), 'private_key_rejected'],
      ['a JWK with d', p256.privateKey.export({ format: 'jwk' }), 'private_key_rejected'],
      ['an off-curve JWK', offCurve, 'invalid_public_key'],
      ['garbage PEM', '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n', 'invalid_public_key'],
      ['a truncated PEM', spki(p256).slice(0, 80), 'invalid_public_key'],
      ['plain text', 'hello', 'invalid_public_key'],
      ['an empty JWK', {}, 'invalid_public_key'],
    ];

    it.each(cases)('refuses %s with 400 %s, echoing nothing', async (_what, publicKey, code) => {
      const body = await fx.refused(() => fx.api('POST', '/v1/devices', { id: 'key-test-1', publicKey }), 400, code);
      const text = JSON.stringify(body);
      expect(text).not.toContain('BEGIN');
      if (typeof publicKey === 'object' && publicKey !== null && 'x' in publicKey) expect(text).not.toContain((publicKey as { x: string }).x);
      await fx.refused(() => fx.api('POST', '/v1/devices:batch', { devices: [{ id: 'key-test-2', publicKey }] }), 400, 'batch_rejected');
      await fx.refused(() => fx.api('POST', '/v1/services', { name: 'key-test', publicKey, acl: { publish: [], subscribe: [] } }), 400, code);
    });

    it('refuses a private key on a credential add too', async () => {
      await fx.api('POST', '/v1/devices', { id: 'cred-target', publicKey: deviceKey().pem });
      await fx.refused(
        () => fx.api('POST', '/v1/devices/cred-target/credentials', { publicKey: p256.privateKey.export({ format: 'jwk' }) }),
        400,
        'private_key_rejected',
      );
    });
  });

  describe('device ids the API refuses (protocol.md §Device ids)', () => {
    const ids = ['a/b', 'dev+1', 'dev#1', `dev'1`, 'dev"1', `x'); DROP TABLE devices;--`, 'ab', 'a'.repeat(65), '1abc', '', ' dev-1', 'dév-1', 'svc:dash'];
    it.each(ids)('refuses %j with 400 invalid_device_id', async (id) => {
      await fx.refused(() => fx.api('POST', '/v1/devices', { id, publicKey: deviceKey().pem }), 400, 'invalid_device_id');
    });

    it('refuses such ids in paths too, never reaching the database', async () => {
      for (const raw of ['dev+1', encodeURIComponent(`x' OR '1'='1`), encodeURIComponent('dev"1'), 'ab']) {
        await fx.refused(() => fx.api('GET', `/v1/devices/${raw}`), 400, 'invalid_device_id');
        await fx.refused(() => fx.api('DELETE', `/v1/devices/${raw}`), 400, 'invalid_device_id');
      }
      // a `/` makes it another path: no such route
      await fx.refused(() => fx.api('GET', '/v1/devices/a/b/c'), 404, 'not_found');
    });
  });

  describe('malformed requests', () => {
    it.each([
      ['an id of the wrong type', { id: 42, publicKey: 'x' }],
      ['a publicKey of the wrong type', { id: 'type-1', publicKey: 42 }],
      ['a publicKey array', { id: 'type-1', publicKey: ['a'] }],
      ['metadata as a string', { id: 'type-1', publicKey: 'x', metadata: 'm' }],
      ['expiresAt as an array', { id: 'type-1', publicKey: 'x', expiresAt: ['1700000000000'] }],
      ['expiresAt as a float', { id: 'type-1', publicKey: 'x', expiresAt: 1.5 }],
      ['an unknown property', { id: 'type-1', publicKey: 'x', admin: true }],
      ['a missing publicKey', { id: 'type-1' }],
      ['an array body', [{ id: 'type-1' }]],
      ['a string body', '"just a string"'],
      ['null', 'null'],
    ])('refuses %s with 400 validation_failed', async (_what, body) => {
      await fx.refused(() => fx.api('POST', '/v1/devices', body), 400, 'validation_failed');
    });

    it('refuses malformed and empty JSON with 400 malformed_json', async () => {
      await fx.refused(() => fx.api('POST', '/v1/devices', '{"id": "x",'), 400, 'malformed_json');
      await fx.refused(() => fx.api('POST', '/v1/devices', '{"__proto__": {"admin": true}, "id": "x"}'), 400, 'malformed_json');
      const res = await fetch(`${fx.url}/v1/devices`, { method: 'POST', headers: { authorization: `Bearer test-admin-token-0123456789abcdef`, 'content-type': 'application/json' } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('malformed_json');
    });

    it('refuses a 3 MB body with 413 payload_too_large', async () => {
      const big = JSON.stringify({ id: 'big-1', publicKey: deviceKey().pem, metadata: { blob: 'x'.repeat(3 * 1024 * 1024) } });
      await fx.refused(() => fx.api('POST', '/v1/devices', big), 413, 'payload_too_large');
    });

    it('refuses other media types with 415 unsupported_media_type', async () => {
      await fx.refused(() => fx.api('POST', '/v1/devices', 'id=x', { authorization: 'Bearer test-admin-token-0123456789abcdef', 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
      await fx.refused(
        () => fx.api('POST', '/v1/devices', 'id=x', { authorization: 'Bearer test-admin-token-0123456789abcdef', 'content-type': 'application/x-www-form-urlencoded' }),
        415,
        'unsupported_media_type',
      );
    });

    it('answers unknown routes and methods with 404 not_found as problem+json', async () => {
      await fx.refused(() => fx.api('GET', '/v2/devices'), 404, 'not_found');
      await fx.refused(() => fx.api('PUT', '/v1/devices'), 404, 'not_found');
    });
  });
});
