import { createPublicKey, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { generateDeviceKeyPair } from '../../device-sdk/src/keys/keys.ts';
import { mintConnectToken, mintEnrollProof, type Es256Signer } from '../../device-sdk/src/token/mint-token.ts';
import { DEFAULT_TOKEN_RULES, MAX_AUDIENCE_LENGTH, MAX_JTI_LENGTH, MAX_KID_LENGTH } from '../../device-sdk/src/protocol/limits.ts';
import { ProtocolError } from '../../device-sdk/src/protocol/errors.ts';
import { verifyToken } from '../../device-sdk/src/protocol/verify-token.ts';

const NOW = 1_800_000_000_000; // epoch ms
const clock = (): number => NOW;

function decode(token: string): { header: Record<string, unknown>; claims: Record<string, unknown>; signingInput: Buffer; signature: Buffer } {
  const parts = token.split('.');
  expect(parts).toHaveLength(3);
  for (const p of parts) expect(p).toMatch(/^[A-Za-z0-9_-]+$/); // RFC 7515 §2: unpadded base64url
  const [h, c, s] = parts as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    claims: JSON.parse(Buffer.from(c, 'base64url').toString('utf8')),
    signingInput: Buffer.from(`${h}.${c}`),
    signature: Buffer.from(s, 'base64url'),
  };
}

function verifiesP1363(token: string, key: KeyObject): boolean {
  const { signingInput, signature } = decode(token);
  return signature.length === 64 && cryptoVerify('sha256', signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature);
}

function verifyWithCore(token: string, publicKey: KeyObject, principal: string, nowMs = NOW) {
  return verifyToken(token, {
    ...DEFAULT_TOKEN_RULES,
    now: nowMs,
    principal,
    resolveCredentials: (p) => (p === principal ? [{ kid: 'k1', key: publicKey, expiresAt: null }] : null),
  });
}

async function typeErrorOf(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return false;
  } catch (e) {
    return e instanceof TypeError;
  }
}

describe('mintConnectToken', () => {
  const { privateKey, publicKey } = generateDeviceKeyPair();

  it('mints an ES256 JWT with the documented header and claims', async () => {
    const { token, iat, exp } = await mintConnectToken({ subject: 'thermo-001', privateKey, clock });
    const { header, claims } = decode(token);
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT' });
    expect(claims).toEqual({ sub: 'thermo-001', aud: 'latchkey', iat: NOW / 1000, exp: NOW / 1000 + 3600 });
    expect(iat).toBe(NOW / 1000);
    expect(exp).toBe(iat + 3600);
    expect(verifiesP1363(token, publicKey)).toBe(true);
    expect(verifiesP1363(token, generateDeviceKeyPair().publicKey)).toBe(false);
  });

  it('verifies with the protocol core and with jose', async () => {
    const { token } = await mintConnectToken({ subject: 'thermo-001', privateKey, clock, kid: 'k1', jti: true });
    const verified = verifyWithCore(token, publicKey, 'thermo-001');
    expect(verified.sub).toBe('thermo-001');
    expect(verified.kid).toBe('k1');
    const real = await mintConnectToken({ subject: 'thermo-001', privateKey });
    const { payload, protectedHeader } = await jwtVerify(real.token, publicKey, { audience: 'latchkey', algorithms: ['ES256'] });
    expect(payload.sub).toBe('thermo-001');
    expect(protectedHeader.typ).toBe('JWT');
  });

  it('uses kid, audience, ttl, a given jti, and integer seconds', async () => {
    const { token } = await mintConnectToken({
      subject: 'svc:dashboard',
      privateKey,
      audience: 'plant-7',
      ttlSeconds: 600,
      kid: 'cred-2',
      jti: 'abc123',
      clock: () => NOW + 999,
    });
    const { header, claims } = decode(token);
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'cred-2' });
    expect(claims).toEqual({ sub: 'svc:dashboard', aud: 'plant-7', iat: NOW / 1000, exp: NOW / 1000 + 600, jti: 'abc123' });
    expect(verifyToken(token, {
      ...DEFAULT_TOKEN_RULES, audience: 'plant-7', now: NOW, principal: 'svc:dashboard',
      resolveCredentials: () => [{ kid: 'cred-2', key: publicKey, expiresAt: null }],
    }).jti).toBe('abc123');
  });

  it('jti: true gives a fresh random 128-bit base64url jti each time', async () => {
    const a = decode((await mintConnectToken({ subject: 'thermo-001', privateKey, jti: true })).token).claims.jti;
    const b = decode((await mintConnectToken({ subject: 'thermo-001', privateKey, jti: true })).token).claims.jti;
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a).not.toBe(b);
    expect(decode((await mintConnectToken({ subject: 'thermo-001', privateKey, jti: false })).token).claims).not.toHaveProperty('jti');
  });

  it('applies clockOffsetMs to the clock (devices without an RTC)', async () => {
    const offset = 3 * 86_400_000 + 1500;
    const { iat, exp, token } = await mintConnectToken({ subject: 'thermo-001', privateKey, clock, clockOffsetMs: offset, ttlSeconds: 60 });
    expect(iat).toBe(Math.floor((NOW + offset) / 1000));
    expect(exp).toBe(iat + 60);
    // A device whose clock is 3 days slow, corrected by the offset, is valid at server time.
    expect(() => verifyWithCore(token, publicKey, 'thermo-001', NOW + offset)).not.toThrow();
    const uncorrected = await mintConnectToken({ subject: 'thermo-001', privateKey, clock, ttlSeconds: 60 });
    expect(() => verifyWithCore(uncorrected.token, publicKey, 'thermo-001', NOW + offset)).toThrow(expect.objectContaining({ code: 'token_expired' }));
  });

  it('a custom signer (secure element) produces a valid token over the same signing input', async () => {
    const seen: Uint8Array[] = [];
    const sign: Es256Signer = async (data) => {
      seen.push(data);
      return cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    };
    const viaSigner = await mintConnectToken({ subject: 'thermo-001', sign, clock, kid: 'k1' });
    const viaKey = await mintConnectToken({ subject: 'thermo-001', privateKey, clock, kid: 'k1' });
    expect(seen).toHaveLength(1);
    expect(Buffer.from(seen[0]!).toString()).toBe(decode(viaSigner.token).signingInput.toString());
    // ECDSA is randomized: the signatures differ, the signed parts are identical.
    expect(viaSigner.token.split('.').slice(0, 2)).toEqual(viaKey.token.split('.').slice(0, 2));
    expect(verifiesP1363(viaSigner.token, publicKey)).toBe(true);
    expect(verifyWithCore(viaSigner.token, publicKey, 'thermo-001').kid).toBe('k1');
  });

  it('a signer returning DER or the wrong length is a TypeError; a signer failure propagates', async () => {
    const der: Es256Signer = async (data) => cryptoSign('sha256', data, privateKey);
    expect(await typeErrorOf(mintConnectToken({ subject: 'thermo-001', sign: der }))).toBe(true);
    expect(await typeErrorOf(mintConnectToken({ subject: 'thermo-001', sign: async () => new Uint8Array(63) }))).toBe(true);
    const broken = new Error('secure element unavailable');
    await expect(mintConnectToken({ subject: 'thermo-001', sign: async () => { throw broken; } })).rejects.toBe(broken);
  });

  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const sign: Es256Signer = async () => new Uint8Array(64);
  it.each([
    ['no options', undefined],
    ['neither privateKey nor sign', { subject: 'thermo-001' }],
    ['both privateKey and sign', { subject: 'thermo-001', privateKey, sign }],
    ['a public key', { subject: 'thermo-001', privateKey: publicKey }],
    ['an RSA key', { subject: 'thermo-001', privateKey: rsa }],
    ['a P-384 key', { subject: 'thermo-001', privateKey: p384 }],
    ['sign not a function', { subject: 'thermo-001', sign: 'nope' }],
    ['a bad device id', { subject: 'a/b', privateKey }],
    ['a too-short id', { subject: 'ab', privateKey }],
    ['a client id with an instance', { subject: 'svc:dashboard:2', privateKey }],
    ['a bad service name', { subject: 'svc:Dash', privateKey }],
    ['a non-string subject', { subject: 42, privateKey }],
    ['ttl 0', { subject: 'thermo-001', privateKey, ttlSeconds: 0 }],
    ['ttl negative', { subject: 'thermo-001', privateKey, ttlSeconds: -5 }],
    ['ttl fractional', { subject: 'thermo-001', privateKey, ttlSeconds: 1.5 }],
    ['ttl over a day', { subject: 'thermo-001', privateKey, ttlSeconds: 86_401 }],
    ['ttl NaN', { subject: 'thermo-001', privateKey, ttlSeconds: Number.NaN }],
    ['ttl as a string', { subject: 'thermo-001', privateKey, ttlSeconds: '60' }],
    ['an empty audience', { subject: 'thermo-001', privateKey, audience: '' }],
    ['an empty kid', { subject: 'thermo-001', privateKey, kid: '' }],
    ['a numeric jti', { subject: 'thermo-001', privateKey, jti: 7 }],
    ['an infinite clock offset', { subject: 'thermo-001', privateKey, clockOffsetMs: Infinity }],
    ['a non-function clock', { subject: 'thermo-001', privateKey, clock: 5 }],
    ['a clock returning NaN', { subject: 'thermo-001', privateKey, clock: () => Number.NaN }],
  ])('%s → TypeError', async (_name, opts) => {
    expect(await typeErrorOf(mintConnectToken(opts as never))).toBe(true);
  });

  it('mints exactly the kids the verifier accepts: a token at the longest allowed kid verifies, a longer kid is refused here', async () => {
    // regression: minting allowed 256 characters while the verifier refuses more than 128 as header_invalid
    for (const length of [1, MAX_KID_LENGTH - 1, MAX_KID_LENGTH, MAX_KID_LENGTH + 1, 200, 256, 257]) {
      const kid = 'k'.repeat(length);
      let token: string;
      try {
        token = (await mintConnectToken({ subject: 'thermo-001', privateKey, clock, kid })).token;
      } catch (e) {
        expect(e, `kid of ${length}`).toBeInstanceOf(TypeError);
        expect(length, 'only a kid the verifier refuses may be refused').toBeGreaterThan(MAX_KID_LENGTH);
        continue;
      }
      expect(length, `a kid of ${length} characters was minted`).toBeLessThanOrEqual(MAX_KID_LENGTH);
      const verified = verifyToken(token, {
        ...DEFAULT_TOKEN_RULES,
        now: NOW,
        principal: 'thermo-001',
        resolveCredentials: () => [{ kid, key: publicKey, expiresAt: null }],
      });
      expect(verified.kid).toBe(kid);
    }
  });

  it('refuses an audience or a jti over its limit, and mints at the limit', async () => {
    expect(await typeErrorOf(mintConnectToken({ subject: 'thermo-001', privateKey, audience: 'a'.repeat(MAX_AUDIENCE_LENGTH + 1) }))).toBe(true);
    expect(await typeErrorOf(mintConnectToken({ subject: 'thermo-001', privateKey, jti: 'j'.repeat(MAX_JTI_LENGTH + 1) }))).toBe(true);
    const audience = 'a'.repeat(MAX_AUDIENCE_LENGTH);
    const { token } = await mintConnectToken({ subject: 'thermo-001', privateKey, clock, audience, jti: 'j'.repeat(MAX_JTI_LENGTH) });
    expect(() => verifyToken(token, { ...DEFAULT_TOKEN_RULES, audience, now: NOW, principal: 'thermo-001', resolveCredentials: () => [{ kid: 'k1', key: publicKey, expiresAt: null }] })).not.toThrow(ProtocolError);
  });

  it('ttl 86400 is the largest accepted', async () => {
    const { iat, exp } = await mintConnectToken({ subject: 'thermo-001', privateKey, ttlSeconds: 86_400 });
    expect(exp - iat).toBe(86_400);
  });
});

describe('mintEnrollProof', () => {
  const { privateKey, publicKey } = generateDeviceKeyPair();

  it('signs sub = deviceId, aud = <audience>:enroll, exp − iat = 300 by default', async () => {
    const proof = await mintEnrollProof({ deviceId: 'thermo-001', privateKey, clock });
    const { header, claims } = decode(proof);
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT' });
    expect(claims).toEqual({ sub: 'thermo-001', aud: 'latchkey:enroll', iat: NOW / 1000, exp: NOW / 1000 + 300 });
    expect(verifiesP1363(proof, publicKey)).toBe(true);
    const { payload } = await jwtVerify(proof, createPublicKey(privateKey), { audience: 'latchkey:enroll', currentDate: new Date(NOW) });
    expect(payload.sub).toBe('thermo-001');
  });

  it('honours audience, ttl, clock offset and a custom signer', async () => {
    const sign: Es256Signer = async (data) => cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const proof = await mintEnrollProof({ deviceId: 'thermo-001', sign, audience: 'plant-7', ttlSeconds: 30, clock, clockOffsetMs: 10_000 });
    const { claims } = decode(proof);
    expect(claims).toEqual({ sub: 'thermo-001', aud: 'plant-7:enroll', iat: NOW / 1000 + 10, exp: NOW / 1000 + 40 });
    expect(verifiesP1363(proof, publicKey)).toBe(true);
  });

  it.each([
    ['a service principal', { deviceId: 'svc:dashboard', privateKey }],
    ['a bad device id', { deviceId: 'x', privateKey }],
    ['ttl over 300', { deviceId: 'thermo-001', privateKey, ttlSeconds: 301 }],
    ['ttl 0', { deviceId: 'thermo-001', privateKey, ttlSeconds: 0 }],
    ['no key', { deviceId: 'thermo-001' }],
  ])('%s → TypeError', async (_name, opts) => {
    expect(await typeErrorOf(mintEnrollProof(opts as never))).toBe(true);
  });
});
