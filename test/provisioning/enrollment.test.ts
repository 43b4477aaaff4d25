import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceKey, problem, signJwt, startApi, type DeviceKey, type HttpFixture } from './http-fixture.ts';
import { BACKENDS } from '../registry/registry-fixture.ts';

describe.each(BACKENDS)('enrollment API on %s', (backend) => {
  let fx: HttpFixture;
  beforeEach(async () => {
    fx = await startApi({ backend, config: { authFailureLimit: 0 } });
  });
  afterEach(() => fx.close());

  async function newToken(body: Record<string, unknown> = {}): Promise<{ token: string; tokenId: string }> {
    const res = await fx.api('POST', '/v1/enrollment-tokens', { ttlSeconds: 600, ...body });
    expect(res.status).toBe(201);
    return res.body;
  }

  function proof(key: DeviceKey, deviceId: string, over: Record<string, unknown> = {}, header?: Record<string, unknown>): string {
    const iat = Math.floor(fx.clock() / 1000);
    return signJwt(key.privateKey, { sub: deviceId, aud: 'latchkey:enroll', iat, exp: iat + 120, ...over }, header);
  }

  function enroll(token: string, deviceId: string, key: DeviceKey, p = proof(key, deviceId), publicKey: unknown = key.pem) {
    return fx.api('POST', '/v1/enroll', { deviceId, publicKey, proof: p }, { authorization: `Bearer ${token}` });
  }

  describe('enrollment tokens (admin)', () => {
    it('shows the secret once, lists without it, deletes', async () => {
      const t = await newToken({ uses: 3, idPattern: 'lock-[0-9]+', metadata: { site: 'hq' } });
      expect(t.token).toMatch(/^lket\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{43}$/);
      const list = await fx.api('GET', '/v1/enrollment-tokens');
      expect(list.body.tokens).toMatchObject([{ tokenId: t.tokenId, usesTotal: 3, usesLeft: 3, idPattern: 'lock-[0-9]+', metadata: { site: 'hq' } }]);
      const secret = t.token.split('.')[2]!;
      expect(JSON.stringify(list.body)).not.toContain(secret);
      expect(JSON.stringify(await fx.snapshot())).not.toContain(secret);
      expect((await fx.api('DELETE', `/v1/enrollment-tokens/${t.tokenId}`)).status).toBe(204);
      await fx.refused(() => fx.api('DELETE', `/v1/enrollment-tokens/${t.tokenId}`), 404, 'enrollment_token_not_found');
      await fx.refused(() => fx.api('DELETE', `/v1/enrollment-tokens/x'y`), 404, 'enrollment_token_not_found');
      // a deleted token no longer enrolls
      const k = deviceKey();
      await fx.refused(() => enroll(t.token, 'lock-1', k), 401, 'enrollment_token_invalid');
    });

    it('refuses bad token requests', async () => {
      for (const body of [{}, { ttlSeconds: 0 }, { ttlSeconds: 1.5 }, { ttlSeconds: 60, uses: 0 }, { ttlSeconds: '60' }, { ttlSeconds: 60, extra: 1 }]) {
        await fx.refused(() => fx.api('POST', '/v1/enrollment-tokens', body), 400, 'validation_failed');
      }
      for (const idPattern of ['(a+)+', '(a|a)*', '(?=x)', '\\1', '[', 'x'.repeat(129)]) {
        const code = idPattern.length > 128 ? 'validation_failed' : 'invalid_id_pattern';
        await fx.refused(() => fx.api('POST', '/v1/enrollment-tokens', { ttlSeconds: 60, idPattern }), 400, code);
      }
    });
  });

  describe('GET /v1/enrollment-tokens pages like devices (issue 16, finding 9)', () => {
    it('limit + cursor, in creation order, every token exactly once', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await newToken()).tokenId);
        if (i % 3 === 0) fx.clock.advance(1_000); // some tokens share a createdAt: the id breaks the tie
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await fx.api('GET', `/v1/enrollment-tokens?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`);
        expect(res.status).toBe(200);
        expect(res.body.tokens.length).toBeLessThanOrEqual(3);
        seen.push(...res.body.tokens.map((t: { tokenId: string }) => t.tokenId));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor !== null);
      expect(pages).toBe(3);
      expect(new Set(seen).size).toBe(7);
      const created = (await fx.api('GET', '/v1/enrollment-tokens')).body.tokens as Array<{ tokenId: string; createdAt: number }>;
      expect(seen).toEqual(created.map((t) => t.tokenId));
      expect(created.map((t) => t.createdAt)).toEqual([...created.map((t) => t.createdAt)].sort((a, b) => a - b));
      expect([...seen].sort()).toEqual([...ids].sort());
    });

    it('answers 100 by default with a nextCursor, and refuses bad limits and tampered cursors', async () => {
      for (let i = 0; i < 101; i++) {
        await fx.registry.enrollment.create({ tokenId: `tok${String(i).padStart(9, '0')}`, secretHash: Buffer.alloc(32), uses: 1, expiresAt: fx.clock() + 60_000, idPattern: null, metadata: {} }, 'admin');
      }
      const first = await fx.api('GET', '/v1/enrollment-tokens');
      expect(first.body.tokens).toHaveLength(100);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      expect((await fx.api('GET', `/v1/enrollment-tokens?cursor=${first.body.nextCursor}`)).body.tokens).toHaveLength(1);
      const b64 = (s: string) => Buffer.from(s).toString('base64url');
      const doc = (await fx.api('GET', '/v1/openapi.json', undefined, {})).body;
      const params = doc.paths['/v1/enrollment-tokens'].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`);
      expect(params.sort()).toEqual(['query:cursor', 'query:limit']);
      expect(doc.paths['/v1/enrollment-tokens'].get.responses['200'].content['application/json'].schema.required).toEqual(['tokens', 'nextCursor']);
      for (const q of ['limit=0', 'limit=1001', 'limit=x', 'cursor=%21%21', `cursor=${b64('v1:thermo-1')}`, `cursor=${b64('v2:1.tok000000001')}`, `cursor=${b64('v1:1.short')}`, 'other=1']) {
        await fx.refused(() => fx.api('GET', `/v1/enrollment-tokens?${q}`), 400, 'validation_failed');
      }
    });
  });

  describe('POST /v1/enroll', () => {
    it('enrolls once with a one-time token, then refuses the spent token', async () => {
      const t = await newToken({ metadata: { batch: 'b1' } });
      const k = deviceKey();
      const res = await enroll(t.token, 'thermo-100', k);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ id: 'thermo-100', metadata: { batch: 'b1' }, blocked: false });
      expect((await fx.api('GET', '/v1/enrollment-tokens')).body.tokens[0].usesLeft).toBe(0);
      expect((await fx.api('GET', '/v1/audit?deviceId=thermo-100')).body.entries).toMatchObject([
        { action: 'device.enroll', actor: `enrollment:${t.tokenId}` },
      ]);
      await fx.refused(() => enroll(t.token, 'thermo-101', deviceKey()), 401, 'enrollment_token_invalid');
    });

    it('exhausts a multi-use token', async () => {
      const t = await newToken({ uses: 3 });
      for (let i = 0; i < 3; i++) expect((await enroll(t.token, `multi-${i}`, deviceKey())).status).toBe(201);
      await fx.refused(() => enroll(t.token, 'multi-3', deviceKey()), 401, 'enrollment_token_invalid');
    });

    it('expires by the injected clock', async () => {
      const t = await newToken({ ttlSeconds: 60, uses: 2 });
      expect((await enroll(t.token, 'early-1', deviceKey())).status).toBe(201);
      fx.clock.advance(60_000);
      await fx.refused(() => enroll(t.token, 'late-1', deviceKey()), 401, 'enrollment_token_invalid');
    });

    it('refuses missing, malformed, unknown and forged tokens', async () => {
      const t = await newToken();
      const k = deviceKey();
      const forged = t.token.slice(0, -1) + (t.token.endsWith('A') ? 'B' : 'A');
      for (const authorization of ['', 'Bearer', `Basic ${t.token}`, 'Bearer lket.nope.nope', forged.replace(/^/, 'Bearer '), `Bearer lket.${'A'.repeat(12)}.${'A'.repeat(43)}`]) {
        await fx.refused(() => fx.api('POST', '/v1/enroll', { deviceId: 'forge-1', publicKey: k.pem, proof: proof(k, 'forge-1') }, { authorization }), 401, 'enrollment_token_invalid');
      }
      // the admin token is not an enrollment token
      await fx.refused(() => fx.api('POST', '/v1/enroll', { deviceId: 'forge-1', publicKey: k.pem, proof: proof(k, 'forge-1') }), 401, 'enrollment_token_invalid');
      expect((await enroll(t.token, 'forge-1', k)).status).toBe(201);
    });

    it('refuses a proof signed by another key, for another device, or breaking the proof rules — consuming nothing', async () => {
      const t = await newToken();
      const k = deviceKey();
      const other = deviceKey();
      const now = Math.floor(fx.clock() / 1000);
      const bad: Array<[string, string]> = [
        ['wrong signer', proof(other, 'proof-1')],
        ['another device id', proof(k, 'proof-2')],
        ['connect audience', proof(k, 'proof-1', { aud: 'latchkey' })],
        ['lifetime over 5 min', proof(k, 'proof-1', { iat: now, exp: now + 301 })],
        ['expired', proof(k, 'proof-1', { iat: now - 1000, exp: now - 900 })],
        ['missing exp', proof(k, 'proof-1', { exp: undefined })],
        ['embedded jwk header', proof(other, 'proof-1', {}, { alg: 'ES256', jwk: other.jwk })],
        ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'proof-1', aud: 'latchkey:enroll', iat: now, exp: now + 60 })).toString('base64url')}.`],
        ['not a JWT', 'hello'],
      ];
      for (const [, p] of bad) await fx.refused(() => enroll(t.token, 'proof-1', k, p), 400, 'proof_invalid');
      expect((await fx.api('GET', '/v1/enrollment-tokens')).body.tokens[0].usesLeft).toBe(1);
      // a kid header naming the key is fine
      expect((await enroll(t.token, 'proof-1', k, proof(k, 'proof-1', {}, { alg: 'ES256', typ: 'JWT', kid: 'new-key' }))).status).toBe(201);
    });

    it('refuses bad ids and keys, taken ids and keys, and ids outside the pattern — consuming nothing', async () => {
      const t = await newToken({ uses: 5, idPattern: 'lock-[0-9]{3}' });
      const taken = deviceKey();
      await fx.api('POST', '/v1/devices', { id: 'lock-001', publicKey: taken.pem });
      const k = deviceKey();
      await fx.refused(() => enroll(t.token, 'bad/id', k), 400, 'invalid_device_id');
      await fx.refused(() => enroll(t.token, 'lock-002', k, proof(k, 'lock-002'), 'garbage'), 400, 'invalid_public_key');
      await fx.refused(() => enroll(t.token, 'lock-002', k, proof(k, 'lock-002'), k.privateKey.export({ format: 'jwk' })), 400, 'private_key_rejected');
      await fx.refused(() => enroll(t.token, 'lock-9999', k), 403, 'device_id_not_allowed');
      await fx.refused(() => enroll(t.token, 'xlock-002', k), 403, 'device_id_not_allowed');
      await fx.refused(() => enroll(t.token, 'lock-001', k), 409, 'device_exists');
      await fx.refused(() => enroll(t.token, 'lock-003', taken), 409, 'key_in_use');
      expect((await fx.api('GET', '/v1/enrollment-tokens')).body.tokens[0].usesLeft).toBe(5);
    });

    it('lets exactly one of many concurrent enrollments take the last use', async () => {
      const t = await newToken({ uses: 1 });
      const attempts = Array.from({ length: 12 }, (_, i) => {
        const k = deviceKey();
        return enroll(t.token, `race-${i}`, k);
      });
      const results = await Promise.all(attempts);
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(results.filter((r) => r.status !== 201).every((r) => r.body.code === 'enrollment_token_invalid')).toBe(true);
      expect((await fx.api('GET', '/v1/devices')).body.devices).toHaveLength(1);
    });

    it('throttles repeated bad tokens from one address (429 rate_limited)', async () => {
      const local = await startApi({ config: { authFailureLimit: 3 } });
      try {
        const k = deviceKey();
        const body = { deviceId: 'thr-1', publicKey: k.pem, proof: 'x' };
        for (let i = 0; i < 3; i++) problem(await local.api('POST', '/v1/enroll', body, { authorization: 'Bearer nope' }), 401, 'enrollment_token_invalid');
        const limited = await local.api('POST', '/v1/enroll', body, { authorization: 'Bearer nope' });
        problem(limited, 429, 'rate_limited');
        expect(limited.headers.get('retry-after')).toBe('60');
        // the admin routes have their own budget (docs/operations.md §Throttles)
        expect((await local.api('GET', '/v1/devices')).status).toBe(200);
        local.clock.advance(60_000);
        problem(await local.api('POST', '/v1/enroll', body, { authorization: 'Bearer nope' }), 401, 'enrollment_token_invalid');
      } finally {
        await local.close();
      }
    });
  });
});
