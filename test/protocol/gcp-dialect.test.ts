import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_GCP_TOKEN_RULES,
  DEFAULT_TOKEN_RULES,
  GCP_DIALECT,
  ProtocolError,
  gcpTokenRules,
  verifyToken,
  type VerifiableCredential,
} from '@latchkey/device-sdk/protocol';

/** protocol.md §Cloud IoT Core tokens through the one verifier, with the Cloud IoT Core dialect. */
const NOW = 1_760_000_000_000;
const T = NOW / 1000;
const PROJECT = 'acme-iot';
const DEVICE = 'thermo-1';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function jws(header: object, payload: object, key: KeyObject | { hmac: Buffer }): string {
  const input = `${b64(header)}.${b64(payload)}`;
  let sig: Buffer;
  if ('hmac' in key) sig = createHmac('sha256', key.hmac).update(input).digest();
  else if (key.asymmetricKeyType === 'rsa') sig = sign('sha256', Buffer.from(input), key);
  else sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}
const b64url = (b: Buffer) => b.toString('base64url');
/** What Google's samples put in a token: iat, exp (20 minutes), aud = project; no sub. */
const sample = (o: object = {}) => ({ iat: T, exp: T + 1200, aud: PROJECT, ...o });

let rsa: { publicKey: KeyObject; privateKey: KeyObject };
let ec: { publicKey: KeyObject; privateKey: KeyObject };
beforeAll(() => {
  rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
});

const cred = (kid: string, key: KeyObject, expiresAt: number | null = null): VerifiableCredential => ({ kid, key, expiresAt });

function verify(token: string, creds: VerifiableCredential[], o: { rules?: { maxTokenLifetime?: number; clockTolerance?: number }; native?: boolean } = {}) {
  const rules = o.native ? DEFAULT_TOKEN_RULES : gcpTokenRules(PROJECT, { ...DEFAULT_GCP_TOKEN_RULES, ...o.rules });
  return verifyToken(token, { ...rules, now: NOW, principal: DEVICE, resolveCredentials: () => creds, ...(o.native ? {} : { dialect: GCP_DIALECT }) });
}
function reason(token: string, creds: VerifiableCredential[], o?: Parameters<typeof verify>[2]): string {
  try {
    verify(token, creds, o);
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return (e as ProtocolError).code;
  }
}

describe('Cloud IoT Core tokens (protocol.md §Cloud IoT Core tokens)', () => {
  it('accepts RS256 with an RSA credential and ES256 with a P-256 one, without sub', () => {
    const r = verify(jws({ alg: 'RS256', typ: 'JWT' }, sample(), rsa.privateKey), [cred('r', rsa.publicKey)]);
    expect(r).toMatchObject({ kid: 'r', alg: 'RS256', aud: PROJECT, expiresAtMs: (T + 1200) * 1000 });
    expect(r.sub).toBeUndefined();
    expect(verify(jws({ alg: 'ES256' }, sample(), ec.privateKey), [cred('e', ec.publicKey)])).toMatchObject({ kid: 'e', alg: 'ES256' });
  });

  it('picks the credential of the token’s key type when a device holds both', () => {
    const both = [cred('e', ec.publicKey), cred('r', rsa.publicKey)];
    expect(verify(jws({ alg: 'RS256' }, sample(), rsa.privateKey), both).kid).toBe('r');
    expect(verify(jws({ alg: 'ES256' }, sample(), ec.privateKey), both).kid).toBe('e');
  });

  it('binds alg to the key type: RS256 against an EC key and ES256 against RSA are alg_key_mismatch', () => {
    expect(reason(jws({ alg: 'RS256' }, sample(), rsa.privateKey), [cred('e', ec.publicKey)])).toBe('alg_key_mismatch');
    expect(reason(jws({ alg: 'ES256' }, sample(), ec.privateKey), [cred('r', rsa.publicKey)])).toBe('alg_key_mismatch');
    // a kid naming a credential of the other type
    expect(reason(jws({ alg: 'ES256', kid: 'r' }, sample(), ec.privateKey), [cred('e', ec.publicKey), cred('r', rsa.publicKey)])).toBe('alg_key_mismatch');
    // an RS256 token signed by the wrong RSA key is a plain bad signature
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(reason(jws({ alg: 'RS256' }, sample(), other.privateKey), [cred('r', rsa.publicKey)])).toBe('signature_invalid');
  });

  it('refuses HS256 signed with the public key bytes (the algorithm-confusion attack) before any key is used', () => {
    for (const secret of [Buffer.from(rsa.publicKey.export({ type: 'spki', format: 'pem' })), rsa.publicKey.export({ type: 'spki', format: 'der' })]) {
      expect(reason(jws({ alg: 'HS256', typ: 'JWT' }, sample(), { hmac: secret }), [cred('r', rsa.publicKey)])).toBe('alg_not_allowed');
    }
    for (const alg of ['none', 'RS384', 'PS256', 'ES384', 'rs256']) {
      expect(reason(jws({ alg }, sample(), rsa.privateKey), [cred('r', rsa.publicKey)]), alg).toBe('alg_not_allowed');
    }
  });

  it('keeps the header allowlist of protocol.md', () => {
    const jwk = { ...rsa.publicKey.export({ format: 'jwk' }) };
    for (const extra of [{ jwk }, { jku: 'https://x' }, { x5u: 'https://x' }, { x5c: ['AA'] }, { crit: ['exp'] }, { b64: false }, { cty: 'JWT' }]) {
      expect(reason(jws({ alg: 'RS256', ...extra }, sample(), rsa.privateKey), [cred('r', rsa.publicKey)])).toBe('header_forbidden');
    }
    expect(reason(jws({ alg: 'RS256', typ: 'at+jwt' }, sample(), rsa.privateKey), [cred('r', rsa.publicKey)])).toBe('header_invalid');
  });

  it('aud is one string equal to the project', () => {
    const c = [cred('r', rsa.publicKey)];
    const t = (o: object) => jws({ alg: 'RS256' }, sample(o), rsa.privateKey);
    expect(reason(t({ aud: 'other-project' }), c)).toBe('audience_mismatch');
    expect(reason(t({ aud: [PROJECT] }), c)).toBe('claim_invalid');
    expect(reason(t({ aud: undefined }), c)).toBe('claim_missing');
    expect(reason(t({ aud: 'latchkey' }), c)).toBe('audience_mismatch');
  });

  it('sub may be absent; if present it is the device id', () => {
    const c = [cred('r', rsa.publicKey)];
    expect(reason(jws({ alg: 'RS256' }, sample({ sub: DEVICE }), rsa.privateKey), c)).toBe('accepted');
    expect(reason(jws({ alg: 'RS256' }, sample({ sub: 'thermo-2' }), rsa.privateKey), c)).toBe('subject_mismatch');
    expect(reason(jws({ alg: 'RS256' }, sample({ sub: 7 }), rsa.privateKey), c)).toBe('claim_invalid');
  });

  it('iat and exp are required integers', () => {
    const c = [cred('r', rsa.publicKey)];
    expect(reason(jws({ alg: 'RS256' }, { exp: T + 60, aud: PROJECT }, rsa.privateKey), c)).toBe('claim_missing');
    expect(reason(jws({ alg: 'RS256' }, { iat: T, aud: PROJECT }, rsa.privateKey), c)).toBe('claim_missing');
    expect(reason(jws({ alg: 'RS256' }, sample({ iat: `${T}` }), rsa.privateKey), c)).toBe('claim_invalid');
    expect(reason(jws({ alg: 'RS256' }, sample({ exp: T + 60.5 }), rsa.privateKey), c)).toBe('claim_invalid');
  });

  it('lifetime is capped at 24 h, configurable', () => {
    const c = [cred('r', rsa.publicKey)];
    expect(reason(jws({ alg: 'RS256' }, sample({ exp: T + 86_400 }), rsa.privateKey), c)).toBe('accepted');
    expect(reason(jws({ alg: 'RS256' }, sample({ exp: T + 86_401 }), rsa.privateKey), c)).toBe('lifetime_exceeded');
    expect(reason(jws({ alg: 'RS256' }, sample({ exp: T + 3601 }), rsa.privateKey), c, { rules: { maxTokenLifetime: 3600 } })).toBe('lifetime_exceeded');
  });

  it('clock skew is 600 s, configurable, on iat, exp and nbf', () => {
    const c = [cred('r', rsa.publicKey)];
    const t = (o: object) => jws({ alg: 'RS256' }, sample(o), rsa.privateKey);
    expect(reason(t({ iat: T + 600, exp: T + 1800 }), c)).toBe('accepted');
    expect(reason(t({ iat: T + 601, exp: T + 1800 }), c)).toBe('token_issued_in_future');
    expect(reason(t({ iat: T - 1800, exp: T - 599 }), c)).toBe('accepted');
    expect(reason(t({ iat: T - 1800, exp: T - 600 }), c)).toBe('token_expired');
    expect(reason(t({ nbf: T + 601 }), c)).toBe('token_not_yet_valid');
    expect(reason(t({ iat: T + 120, exp: T + 1800 }), c, { rules: { clockTolerance: 60 } })).toBe('token_issued_in_future');
  });

  it('native devices keep their rules: RS256 is alg_not_allowed, sub is required, aud as an array is fine', () => {
    const native = { native: true };
    expect(reason(jws({ alg: 'RS256' }, { ...sample(), sub: DEVICE, aud: 'latchkey' }, rsa.privateKey), [cred('r', rsa.publicKey)], native)).toBe('alg_not_allowed');
    expect(reason(jws({ alg: 'ES256' }, { ...sample(), aud: 'latchkey' }, ec.privateKey), [cred('e', ec.publicKey)], native)).toBe('claim_missing');
    expect(reason(jws({ alg: 'ES256' }, { ...sample(), sub: DEVICE, aud: ['latchkey'] }, ec.privateKey), [cred('e', ec.publicKey)], native)).toBe('accepted');
  });

  it('an expired credential of the right type is credential_expired; none of that type at all is alg_key_mismatch', () => {
    const expired = [cred('r', rsa.publicKey, NOW - 1), cred('e', ec.publicKey)];
    expect(reason(jws({ alg: 'RS256' }, sample(), rsa.privateKey), expired)).toBe('credential_expired');
    expect(reason(jws({ alg: 'RS256' }, sample(), rsa.privateKey), [cred('e', ec.publicKey, NOW - 1)])).toBe('alg_key_mismatch');
  });
});
