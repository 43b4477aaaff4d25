import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ProtocolError, checkHeader, decodeSegments, verifySignatureP1363 } from '@latchkey/device-sdk/protocol';
import { readWycheproof } from '../helpers/wycheproof.ts';

type Result = 'valid' | 'invalid' | 'acceptable';

describe('Wycheproof ecdsa_secp256r1_sha256_p1363_test.json (RFC 7518 §3.4 signature layer)', () => {
  const file = readWycheproof('ecdsa_secp256r1_sha256_p1363_test.json');
  type Case = { key: string; tcId: number; comment: string; msg: string; sig: string; result: Result };
  const cases: Case[] = file.testGroups.flatMap((g: any) => g.tests.map((t: any): Case => ({ key: g.publicKeyDer as string, ...t })));
  const keys = new Map<string, ReturnType<typeof createPublicKey>>();
  const keyOf = (der: string) => {
    let k = keys.get(der);
    if (!k) keys.set(der, (k = createPublicKey({ key: Buffer.from(der, 'hex'), format: 'der', type: 'spki' })));
    return k;
  };

  it('has both valid and invalid cases', () => {
    expect(cases.filter((c) => c.result === 'valid').length).toBeGreaterThan(100);
    expect(cases.filter((c) => c.result === 'invalid').length).toBeGreaterThan(50);
  });

  it.each(cases.filter((c) => c.result !== 'acceptable').map((c) => [c.tcId, c.comment, c] as [number, string, Case]))(
    'tcId %i %s',
    (_id, _comment, c) => {
      const ok = verifySignatureP1363(keyOf(c.key), Buffer.from(c.msg, 'hex'), Buffer.from(c.sig, 'hex'));
      expect(ok).toBe(c.result === 'valid');
    },
  );
});

describe('Wycheproof json_web_signature_test.json, ES256 groups (below the claim rules)', () => {
  const file = readWycheproof('json_web_signature_test.json');
  const groups = file.testGroups.filter((g: any) => (g.public ?? g.key)?.alg === 'ES256');
  const cases: any[] = groups.flatMap((g: any) => g.tests.map((t: any) => ({ jwk: g.public ?? g.key, ...t })));

  /** decode → header rules → P1363 signature with the group's key; true when the JWS verifies */
  function verifyJws(jws: unknown, jwk: any): { ok: boolean; code?: string } {
    try {
      if (typeof jws !== 'string') throw new ProtocolError('token_malformed', 'JSON serialization is not a connect token');
      const d = decodeSegments(jws);
      const header = checkHeader(d.header);
      if (header.kid !== undefined && header.kid !== jwk.kid) throw new ProtocolError('unknown_credential', 'kid');
      const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
      if (!verifySignatureP1363(key, d.signingInput, d.signature)) throw new ProtocolError('signature_invalid', 'sig');
      return { ok: true };
    } catch (e) {
      if (e instanceof ProtocolError) return { ok: false, code: e.code };
      throw e;
    }
  }

  it('includes the algorithm-confusion and embedded-key attacks', () => {
    const comments = cases.map((c: any) => c.comment).join(' ');
    expect(comments).toContain('SymmetryConfusion');
    expect(comments).toContain('EmbeddedJwk');
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases.filter((c: any) => c.result !== 'acceptable').map((c: any) => [c.tcId, c.comment, c] as [number, string, any]))(
    'tcId %i %s',
    (_id, _comment, c: any) => {
      const r = verifyJws(c.jws, c.jwk);
      expect(r.ok).toBe(c.result === 'valid');
    },
  );

  it('refuses the attacks for the precise reason', () => {
    const byComment = (s: string) => cases.find((c: any) => c.comment.includes(s));
    expect(verifyJws(byComment('SymmetryConfusion').jws, byComment('SymmetryConfusion').jwk).code).toBe('alg_not_allowed');
    expect(verifyJws(byComment('EmbeddedJwk').jws, byComment('EmbeddedJwk').jwk).code).toBe('header_forbidden');
  });
});
