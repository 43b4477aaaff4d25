import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError, canonicalSpkiDer, fingerprintOf, parsePublicKey, publicKeyFromSpkiDer, type KeyErrorCode, type ParsePublicKeyOptions } from '@latchkey/device-sdk/protocol';
import { OPENSSL } from '../helpers/certs.ts';
import { selfSignedCertificate } from '../helpers/x509.ts';
import { protocolCodeOf } from '../helpers/protocol-code.ts';

const RSA: ParsePublicKeyOptions = { allowRsa: true };
const DAY = 86_400_000;

const codeOf = (input: unknown, opts?: ParsePublicKeyOptions) => protocolCodeOf<KeyErrorCode>(() => parsePublicKey(input, opts));

const pemOf = (label: string, der: Uint8Array): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;

/** Hand-built DER, to reach the encodings no library writes. */
const tlv = (tag: number, content: Buffer): Buffer => {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
};
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const int = (raw: Buffer) => tlv(0x02, raw);
const RSA_ALG = seq(tlv(0x06, Buffer.from('2a864886f70d010101', 'hex')), Buffer.from([0x05, 0x00]));
const spki = (alg: Buffer, rsaPublicKey: Buffer) => seq(alg, tlv(0x03, Buffer.concat([Buffer.from([0]), rsaPublicKey])));
/** An SPKI whose RSAPublicKey INTEGERs are given as their raw content octets. */
const rawRsaSpki = (n: Buffer, e: Buffer, alg = RSA_ALG) => pemOf('PUBLIC KEY', spki(alg, seq(int(n), int(e))));
/** The magnitude with a 0x00 sign octet when its top bit is set (a positive minimal INTEGER). */
const positive = (m: Buffer) => (m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);

let rsa2048: { publicKey: KeyObject; privateKey: KeyObject };
let n2048: Buffer;
beforeAll(() => {
  rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  n2048 = Buffer.from(rsa2048.publicKey.export({ format: 'jwk' }).n!, 'base64url');
});

describe('RSA keys where they are not allowed (protocol.md §Keys: the native API)', () => {
  it('every RSA form is unsupported_key_type, whatever its size', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    for (const k of [rsa2048.publicKey, small]) {
      expect(codeOf(k.export({ type: 'spki', format: 'pem' }))).toBe('unsupported_key_type');
      expect(codeOf(k.export({ type: 'pkcs1', format: 'pem' }))).toBe('unsupported_key_type');
      expect(codeOf({ ...k.export({ format: 'jwk' }) })).toBe('unsupported_key_type');
    }
    const cert = selfSignedCertificate({ ...rsa2048, commonName: 'unused', notBefore: Date.now() - DAY, notAfter: Date.now() + DAY, serialHex: '01' });
    expect(codeOf(cert)).toBe('unsupported_key_type');
  });
});

describe('RSA keys for Cloud IoT Core bindings (protocol.md §RSA keys)', () => {
  it('SPKI, PKCS#1, JWK and an X.509 certificate of one key give one canonical SPKI and fingerprint', () => {
    const { publicKey, privateKey } = rsa2048;
    const cert = selfSignedCertificate({ publicKey, privateKey, commonName: 'unused', notBefore: Date.now() - DAY, notAfter: Date.now() + 30 * DAY, serialHex: '0a' });
    const forms = [
      publicKey.export({ type: 'spki', format: 'pem' }),
      publicKey.export({ type: 'pkcs1', format: 'pem' }),
      { ...publicKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' },
      cert,
    ];
    const parsed = forms.map((f) => parsePublicKey(f, RSA));
    expect(parsed.map((p) => p.format)).toEqual(['spki', 'spki', 'jwk', 'x509']);
    for (const p of parsed) {
      expect(p.keyType).toBe('rsa');
      expect(p.algorithm).toBe('RS256');
      expect(p.spkiDer.equals(canonicalSpkiDer(publicKey))).toBe(true);
      expect(p.fingerprint).toBe(parsed[0]!.fingerprint);
      expect(p.key.equals(publicKey)).toBe(true);
    }
    expect(parsed[3]!.expiresAt).toBeGreaterThan(Date.now());
    expect(publicKeyFromSpkiDer(parsed[0]!.spkiDer).equals(publicKey)).toBe(true);
  });

  it('the fingerprint is what `openssl pkey -pubin -outform DER | sha256sum` prints', () => {
    const pem = rsa2048.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const der = execFileSync(OPENSSL, ['pkey', '-pubin', '-outform', 'DER'], { input: pem });
    expect(parsePublicKey(pem, RSA).fingerprint).toBe(createHash('sha256').update(der).digest('hex'));
    expect(fingerprintOf(der)).toBe(parsePublicKey(pem, RSA).fingerprint);
  });

  it('the same key never shares a fingerprint with an EC key, and EC keys still parse as ES256', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const parsed = parsePublicKey(ec.export({ type: 'spki', format: 'pem' }), RSA);
    expect(parsed.keyType).toBe('ec');
    expect(parsed.algorithm).toBe('ES256');
  });

  it('refuses keys under 2048 bits with key_too_small: 1024, 2047', () => {
    for (const bits of [1024, 2047]) {
      const k = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey;
      expect(codeOf(k.export({ type: 'spki', format: 'pem' }), RSA)).toBe('key_too_small');
      expect(codeOf(k.export({ type: 'pkcs1', format: 'pem' }), RSA)).toBe('key_too_small');
      expect(codeOf({ ...k.export({ format: 'jwk' }) }, RSA)).toBe('key_too_small');
    }
  });

  it('refuses a modulus over 8192 bits, an even modulus, and bad public exponents', () => {
    const odd = (bytes: number) => Buffer.concat([Buffer.from([0x80]), Buffer.alloc(bytes - 2, 0x11), Buffer.from([0x01])]);
    const e65537 = Buffer.from([1, 0, 1]);
    expect(codeOf(rawRsaSpki(positive(odd(1025)), e65537), RSA)).toBe('invalid_public_key'); // 8193 bits
    expect(codeOf(rawRsaSpki(positive(odd(1024)), e65537), RSA)).toBe('accepted'); // 8192 bits, as a structure
    const even = Buffer.from(n2048);
    even[even.length - 1]! &= 0xfe;
    expect(codeOf(rawRsaSpki(positive(even), e65537), RSA)).toBe('invalid_public_key');
    for (const e of [Buffer.from([1]), Buffer.from([2]), Buffer.from([0x01, 0x00, 0x00]), Buffer.concat([Buffer.from([1]), Buffer.alloc(32, 0), Buffer.from([1])])]) {
      expect(codeOf(rawRsaSpki(positive(n2048), e), RSA), e.toString('hex')).toBe('invalid_public_key');
    }
    expect(codeOf(rawRsaSpki(positive(n2048), Buffer.from([3])), RSA)).toBe('accepted'); // e = 3: the Wycheproof small-exponent keys
  });

  it('refuses non-DER encodings: a padded or negative INTEGER, missing NULL parameters, trailing bytes, RSASSA-PSS', () => {
    const e65537 = Buffer.from([1, 0, 1]);
    expect(codeOf(rawRsaSpki(Buffer.concat([Buffer.from([0, 0]), n2048]), e65537), RSA)).toBe('invalid_public_key');
    expect(codeOf(rawRsaSpki(n2048, e65537), RSA)).toBe('invalid_public_key'); // top bit set without the sign octet: negative
    expect(codeOf(rawRsaSpki(positive(n2048), Buffer.from([0, 1, 0, 1])), RSA)).toBe('invalid_public_key');
    const noParams = seq(tlv(0x06, Buffer.from('2a864886f70d010101', 'hex')));
    expect(codeOf(rawRsaSpki(positive(n2048), e65537, noParams), RSA)).toBe('invalid_public_key');
    const good = spki(RSA_ALG, seq(int(positive(n2048)), int(e65537)));
    expect(codeOf(pemOf('PUBLIC KEY', Buffer.concat([good, Buffer.from([0])])), RSA)).toBe('invalid_public_key');
    const pss = seq(tlv(0x06, Buffer.from('2a864886f70d01010a', 'hex')));
    expect(codeOf(rawRsaSpki(positive(n2048), e65537, pss), RSA)).toBe('unsupported_key_type');
  });

  it('refuses private keys in every RSA form', () => {
    const { privateKey } = rsa2048;
    expect(codeOf(privateKey.export({ type: 'pkcs1', format: 'pem' }), RSA)).toBe('private_key_rejected');
    expect(codeOf(privateKey.export({ type: 'pkcs8', format: 'pem' }), RSA)).toBe('private_key_rejected');
    expect(codeOf({ ...privateKey.export({ format: 'jwk' }) }, RSA)).toBe('private_key_rejected');
    const { d: _d, ...withoutD } = privateKey.export({ format: 'jwk' });
    expect(codeOf(withoutD, RSA)).toBe('private_key_rejected'); // p, q, dp, dq, qi
    const der = privateKey.export({ type: 'pkcs1', format: 'der' });
    expect(codeOf(pemOf('PUBLIC KEY', der), RSA)).toBe('private_key_rejected');
  });

  it('a JWK must be a verification key: use, key_ops and alg are checked; numbers are minimal, canonical base64url', () => {
    const jwk = { ...rsa2048.publicKey.export({ format: 'jwk' }) };
    expect(codeOf({ ...jwk, use: 'enc' }, RSA)).toBe('invalid_public_key');
    expect(codeOf({ ...jwk, key_ops: ['encrypt'] }, RSA)).toBe('invalid_public_key');
    expect(codeOf({ ...jwk, key_ops: ['verify'] }, RSA)).toBe('accepted');
    expect(codeOf({ ...jwk, alg: 'PS256' }, RSA)).toBe('invalid_public_key');
    expect(codeOf({ ...jwk, alg: 'RS512' }, RSA)).toBe('invalid_public_key');
    expect(codeOf({ ...jwk, n: Buffer.concat([Buffer.from([0]), n2048]).toString('base64url') }, RSA)).toBe('invalid_public_key');
    expect(codeOf({ ...jwk, n: `${jwk.n}=` }, RSA)).toBe('invalid_public_key');
    expect(codeOf({ ...jwk, e: 'AQAB ' }, RSA)).toBe('invalid_public_key');
    const ec = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) };
    expect(codeOf({ ...ec, use: 'enc' })).toBe('invalid_public_key');
    expect(codeOf({ ...ec, alg: 'RS256' })).toBe('invalid_public_key');
  });

  it('an expired certificate is certificate_expired, unless the caller keeps it (an import keeps credentials as they were)', () => {
    const cert = selfSignedCertificate({ ...rsa2048, commonName: 'unused', notBefore: Date.UTC(2022, 0, 1), notAfter: Date.UTC(2023, 0, 1), serialHex: '02' });
    expect(codeOf(cert, RSA)).toBe('certificate_expired');
    const kept = parsePublicKey(cert, { ...RSA, expiredCertificate: 'keep' });
    expect(kept.expiresAt).toBe(Date.UTC(2023, 0, 1));
    expect(kept.key.equals(rsa2048.publicKey)).toBe(true);
  });

  it('publicKeyFromSpkiDer refuses a stored RSA key it would not accept', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(() => publicKeyFromSpkiDer(small.export({ type: 'spki', format: 'der' }))).toThrow(ProtocolError);
  });
});
