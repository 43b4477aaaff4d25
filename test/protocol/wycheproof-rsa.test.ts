import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GCP_DIALECT,
  ProtocolError,
  checkHeader,
  decodeSegments,
  fingerprintOf,
  parsePublicKey,
  publicKeyFromSpkiDer,
  verifySignature,
  verifySignatureRs256,
  type ParsedPublicKey,
} from '@latchkey/device-sdk/protocol';
import { readWycheproof } from '../helpers/wycheproof.ts';

type Result = 'valid' | 'invalid' | 'acceptable';
interface Case {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  sig: string;
  result: Result;
  key: ParsedPublicKey;
}

/** protocol.md §RSA keys: RSA keys are parsed with the same care as EC keys, only where RSA is allowed. */
const RSA = { allowRsa: true } as const;

describe.each([2048, 3072, 4096])('Wycheproof rsa_signature_%i_sha256_test.json (RS256, RFC 7518 §3.3)', (bits) => {
  const file = readWycheproof(`rsa_signature_${bits}_sha256_test.json`);
  const groups: any[] = file.testGroups;
  const cases: Case[] = groups.flatMap((g) => {
    const key = parsePublicKey(g.publicKeyPem as string, RSA);
    return g.tests.map((t: any): Case => ({ ...t, key }));
  });

  it('parses every group key the same way from SPKI PEM, SPKI DER and JWK, to one canonical fingerprint', () => {
    for (const g of groups) {
      const fromPem = parsePublicKey(g.publicKeyPem as string, RSA);
      expect(fromPem.keyType).toBe('rsa');
      expect(fromPem.algorithm).toBe('RS256');
      expect(fromPem.spkiDer.toString('hex')).toBe(g.publicKeyDer);
      expect(fromPem.key.asymmetricKeyDetails?.modulusLength).toBe(g.keySize);
      expect(parsePublicKey(g.keyJwk, RSA).fingerprint).toBe(fromPem.fingerprint);
      expect(fingerprintOf(Buffer.from(g.publicKeyDer as string, 'hex'))).toBe(fromPem.fingerprint);
      expect(publicKeyFromSpkiDer(Buffer.from(g.publicKeyDer as string, 'hex')).equals(createPublicKey(g.publicKeyPem as string))).toBe(true);
    }
  });

  it('has valid and invalid cases, the small-exponent keys included', () => {
    expect(cases.filter((c) => c.result === 'valid').length).toBeGreaterThanOrEqual(7);
    expect(cases.filter((c) => c.result === 'invalid').length).toBeGreaterThan(240);
  });

  it.each(cases.filter((c) => c.result !== 'acceptable').map((c) => [c.tcId, c.comment, c] as [number, string, Case]))('tcId %i %s', (_id, _comment, c) => {
    const msg = Buffer.from(c.msg, 'hex');
    const sig = Buffer.from(c.sig, 'hex');
    expect(verifySignatureRs256(c.key.key, msg, sig)).toBe(c.result === 'valid');
    // bound to the key type: the same bytes never verify as ES256 with this RSA key
    expect(verifySignature('RS256', c.key.key, msg, sig)).toBe(c.result === 'valid');
    expect(verifySignature('ES256', c.key.key, msg, sig)).toBe(false);
  });
});

describe('Wycheproof json_web_signature_test.json, RS256 cases', () => {
  const file = readWycheproof('json_web_signature_test.json');
  const headerAlg = (jws: unknown): unknown => {
    try {
      return typeof jws === 'string' ? JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString('utf8')).alg : undefined;
    } catch {
      return undefined;
    }
  };
  const rsaGroups = file.testGroups.filter((g: any) => g.public?.kty === 'RSA');
  // every case whose key is an RS256 key (or names no algorithm), and every case whose header says RS256
  const cases: any[] = rsaGroups
    .flatMap((g: any) => g.tests.map((t: any) => ({ jwk: g.public, ...t })))
    .filter((c: any) => c.jwk.alg === 'RS256' || c.jwk.alg === undefined || headerAlg(c.jws) === 'RS256');

  /** decode → header rules of the Cloud IoT Core dialect → the group's key through parsePublicKey → RS256 bound to it */
  function verifyJws(jws: unknown, jwk: any): { ok: boolean; code?: string } {
    try {
      if (typeof jws !== 'string') throw new ProtocolError('token_malformed', 'JSON serialization is not a connect token');
      const d = decodeSegments(jws);
      const header = checkHeader(d.header, GCP_DIALECT.algorithms);
      if (header.kid !== undefined && header.kid !== jwk.kid) throw new ProtocolError('unknown_credential', 'kid');
      const { kid: _kid, ...keyMembers } = jwk;
      const key = parsePublicKey(keyMembers, RSA);
      if (!verifySignature(header.alg, key.key, d.signingInput, d.signature)) throw new ProtocolError('signature_invalid', 'sig');
      return { ok: true };
    } catch (e) {
      if (e instanceof ProtocolError) return { ok: false, code: e.code };
      throw e;
    }
  }

  it('covers the RFC 7520 example, the padding attacks, wrong key use and the PS512 key used for RS256', () => {
    const ids = cases.map((c) => c.tcId);
    for (const id of [33, 46, 259, 332, 345, 349, 353, 355]) expect(ids).toContain(id);
    expect(cases.length).toBeGreaterThanOrEqual(200);
  });

  it.each(cases.filter((c) => c.result !== 'acceptable').map((c) => [c.tcId, c.comment, c] as [number, string, any]))('tcId %i %s', (_id, _comment, c) => {
    expect(verifyJws(c.jws, c.jwk).ok).toBe(c.result === 'valid');
  });

  it('refuses for the precise reason: key meant for encryption, a PS512 key, a modified signature', () => {
    const byId = (id: number) => cases.find((c) => c.tcId === id);
    expect(verifyJws(byId(353).jws, byId(353).jwk).code).toBe('invalid_public_key'); // use: enc
    expect(verifyJws(byId(355).jws, byId(355).jwk).code).toBe('invalid_public_key'); // key_ops: encrypt
    expect(verifyJws(byId(332).jws, byId(332).jwk).code).toBe('invalid_public_key'); // alg PS512 key
    expect(verifyJws(byId(34).jws, byId(34).jwk).code).toBe('signature_invalid');
  });
});
