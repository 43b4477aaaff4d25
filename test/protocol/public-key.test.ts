import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError, type KeyErrorCode } from '../../device-sdk/src/protocol/errors.ts';
import { canonicalSpkiDer, fingerprintOf } from '../../device-sdk/src/protocol/fingerprint.ts';
import { decodePoint, validatePoint } from '../../device-sdk/src/protocol/internal/p256-point.ts';
import { parsePublicKey, publicKeyFromSpkiDer } from '../../device-sdk/src/protocol/public-key.ts';
import { createCertFactory, type CertFactory } from '../helpers/certs.ts';
import { protocolCodeOf } from '../helpers/protocol-code.ts';

const codeOf = (input: unknown, opts?: { now?: number }) => protocolCodeOf<KeyErrorCode>(() => parsePublicKey(input, opts));

function errorOf(input: unknown): ProtocolError {
  try {
    parsePublicKey(input);
  } catch (e) {
    return e as ProtocolError;
  }
  throw new Error('expected a refusal');
}

const p256 = (): { publicKey: KeyObject; privateKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spkiPem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }) as string;
const jwkOf = (k: KeyObject): Record<string, unknown> => ({ ...k.export({ format: 'jwk' }) });
const pemOf = (label: string, der: Uint8Array): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END ${label}-----\n`;

/** SPKI DER with a compressed point (RFC 5480 §2.2), built by hand from the JWK. */
function compressedSpkiPem(k: KeyObject): string {
  const jwk = k.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  const prefix = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
  return pemOf('PUBLIC KEY', Buffer.concat([prefix, Buffer.from([0x02 | (y[31]! & 1)]), x]));
}

let certs: CertFactory;
beforeAll(() => {
  certs = createCertFactory();
});
afterAll(() => certs.cleanup());

describe('parsePublicKey: accepted formats', () => {
  it('accepts an SPKI PEM and returns the canonical form', () => {
    const { publicKey } = p256();
    const parsed = parsePublicKey(spkiPem(publicKey));
    expect(parsed.format).toBe('spki');
    expect(parsed.spkiDer.equals(canonicalSpkiDer(publicKey))).toBe(true);
    expect(parsed.spkiPem).toBe(spkiPem(publicKey));
    expect(parsed.key.type).toBe('public');
    expect(parsed.key.equals(publicKey)).toBe(true);
    expect(parsed.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(parsed.expiresAt).toBeNull();
    expect(parsed.notBefore).toBeNull();
  });

  it('accepts CRLF line endings and surrounding whitespace', () => {
    const { publicKey } = p256();
    const pem = `\n  ${spkiPem(publicKey).replace(/\n/g, '\r\n')}  \n`;
    expect(parsePublicKey(pem).spkiDer.equals(canonicalSpkiDer(publicKey))).toBe(true);
  });

  it('accepts a compressed-point SPKI and canonicalises it to the uncompressed point', () => {
    const { publicKey } = p256();
    const parsed = parsePublicKey(compressedSpkiPem(publicKey));
    expect(parsed.spkiDer.equals(canonicalSpkiDer(publicKey))).toBe(true);
    expect(parsed.key.equals(publicKey)).toBe(true);
  });

  it('accepts a JWK object and a JWK JSON string', () => {
    const { publicKey } = p256();
    const jwk = { ...jwkOf(publicKey), kid: 'k1', use: 'sig', alg: 'ES256' };
    const fromObject = parsePublicKey(jwk);
    const fromString = parsePublicKey(` ${JSON.stringify(jwk)}\n`);
    expect(fromObject.format).toBe('jwk');
    expect(fromString.format).toBe('jwk');
    expect(fromObject.spkiDer.equals(canonicalSpkiDer(publicKey))).toBe(true);
    expect(fromString.fingerprint).toBe(fromObject.fingerprint);
  });

  it('accepts an X.509 certificate: its subject key, with notAfter as expiresAt', () => {
    const now = Date.now();
    const cert = certs.selfSigned({ key: 'p256', days: 10 });
    const parsed = parsePublicKey(cert.pem, { now });
    expect(parsed.format).toBe('x509');
    expect(parsed.key.equals(cert.publicKey)).toBe(true);
    const tenDays = 10 * 86_400_000;
    expect(parsed.expiresAt).toBeGreaterThan(now + tenDays - 120_000);
    expect(parsed.expiresAt).toBeLessThan(now + tenDays + 120_000);
    expect(parsed.notBefore).toBeGreaterThan(now - 120_000);
    expect(parsed.notBefore).toBeLessThanOrEqual(now + 1_000);
  });

  it('accepts a P-256 device certificate signed by an RSA CA', () => {
    const cert = certs.caSigned({ caKey: 'rsa' });
    expect(parsePublicKey(cert.pem).key.equals(cert.publicKey)).toBe(true);
  });

  it('refuses a certificate once notAfter ≤ now (certificate_expired)', () => {
    const cert = certs.selfSigned({ key: 'p256', days: 1 });
    const { expiresAt } = parsePublicKey(cert.pem);
    expect(codeOf(cert.pem, { now: expiresAt! - 1 })).toBe('accepted');
    expect(codeOf(cert.pem, { now: expiresAt! })).toBe('certificate_expired');
    expect(codeOf(cert.pem, { now: expiresAt! + 86_400_000 })).toBe('certificate_expired');
  });
});

describe('fingerprints', () => {
  it('the same key in every format has one fingerprint', () => {
    const cert = certs.selfSigned({ key: 'p256' });
    const key = cert.publicKey;
    const inputs = [cert.pem, cert.publicKeyPem, compressedSpkiPem(key), jwkOf(key), JSON.stringify(jwkOf(key))];
    const fingerprints = new Set(inputs.map((i) => parsePublicKey(i).fingerprint));
    expect(fingerprints.size).toBe(1);
  });

  it('is the SHA-256 of the SPKI DER as openssl writes it (the documented recipe)', () => {
    const { publicKey } = p256();
    const der = certs.openssl(['pkey', '-pubin', '-outform', 'DER', '-ec_conv_form', 'uncompressed'], compressedSpkiPem(publicKey));
    const expected = createHash('sha256').update(der).digest('hex');
    expect(parsePublicKey(compressedSpkiPem(publicKey)).fingerprint).toBe(expected);
  });

  it('differs between keys', () => {
    expect(parsePublicKey(spkiPem(p256().publicKey)).fingerprint).not.toBe(parsePublicKey(spkiPem(p256().publicKey)).fingerprint);
  });

  it('canonicalSpkiDer takes a private P-256 key too, and refuses other keys with TypeError', () => {
    const { publicKey, privateKey } = p256();
    expect(canonicalSpkiDer(privateKey).equals(canonicalSpkiDer(publicKey))).toBe(true);
    expect(() => canonicalSpkiDer(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey)).toThrow(TypeError);
    expect(() => canonicalSpkiDer(generateKeyPairSync('ed25519').publicKey)).toThrow(TypeError);
  });

  it('fingerprintOf refuses a non-canonical DER with TypeError', () => {
    const { publicKey } = p256();
    const der = canonicalSpkiDer(publicKey);
    expect(() => fingerprintOf(der.subarray(0, 90))).toThrow(TypeError);
    expect(() => fingerprintOf(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'der' }))).toThrow(TypeError);
    expect(fingerprintOf(der)).toBe(createHash('sha256').update(der).digest('hex'));
  });
});

describe('parsePublicKey: refusals', () => {
  it.each([
    ['RSA', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, 'unsupported_key_type'],
    ['Ed25519', () => generateKeyPairSync('ed25519').publicKey, 'unsupported_key_type'],
    ['Ed448', () => generateKeyPairSync('ed448').publicKey, 'unsupported_key_type'],
    ['X25519', () => generateKeyPairSync('x25519').publicKey, 'unsupported_key_type'],
    ['P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, 'unsupported_curve'],
    ['P-521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey, 'unsupported_curve'],
    ['secp256k1', () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey, 'unsupported_curve'],
  ] as const)('%s keys as SPKI PEM and as JWK', (_name, make, code) => {
    const key = make();
    expect(codeOf(spkiPem(key))).toBe(code);
    expect(codeOf(jwkOf(key))).toBe(code);
    expect(codeOf(JSON.stringify(jwkOf(key)))).toBe(code);
  });

  it('RSA PUBLIC KEY (PKCS#1) is unsupported_key_type', () => {
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'pkcs1', format: 'pem' });
    expect(codeOf(pem)).toBe('unsupported_key_type');
  });

  it.each([
    ['RSA', 'rsa', 'unsupported_key_type'],
    ['Ed25519', 'ed25519', 'unsupported_key_type'],
    ['P-384', 'p384', 'unsupported_curve'],
    ['explicit-parameter P-256', 'p256-explicit', 'unsupported_curve'],
  ] as const)('certificates with a %s subject key', (_name, key, code) => {
    expect(codeOf(certs.selfSigned({ key }).pem)).toBe(code);
  });

  it('explicit-parameter P-256 SPKI is unsupported_curve (RFC 5480 §2.1.1)', () => {
    const pem = certs.selfSigned({ key: 'p256-explicit' }).publicKeyPem;
    expect(pem).toContain('BEGIN PUBLIC KEY');
    expect(codeOf(pem)).toBe('unsupported_curve');
  });
});

describe('parsePublicKey: private keys are refused and never echoed', () => {
  const { privateKey } = p256();
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const sec1 = privateKey.export({ type: 'sec1', format: 'pem' }) as string;
  const encrypted = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  const openssh = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n';
  const pkcs8AsPublic = pemOf('PUBLIC KEY', privateKey.export({ type: 'pkcs8', format: 'der' }));
  const sec1AsPublic = pemOf('PUBLIC KEY', privateKey.export({ type: 'sec1', format: 'der' }));

  it.each([
    ['PKCS#8', pkcs8],
    ['SEC1 EC PRIVATE KEY', sec1],
    ['encrypted PKCS#8', encrypted],
    ['PKCS#1 RSA PRIVATE KEY', rsa],
    ['OpenSSH', openssh],
    ['PKCS#8 DER under a PUBLIC KEY label', pkcs8AsPublic],
    ['SEC1 DER under a PUBLIC KEY label', sec1AsPublic],
    ['a private key followed by its public key', sec1 + spkiPem(createPublicKey(privateKey))],
    ['a private key inside JWK-looking text', `{"note": "${pkcs8.replace(/\n/g, '\\n')}"}`],
  ])('%s → private_key_rejected without echoing the key', (_name, input) => {
    const e = errorOf(input);
    expect(e.code).toBe('private_key_rejected');
    const body = input.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, '');
    for (let i = 0; i + 16 <= body.length; i += 16) expect(e.message).not.toContain(body.slice(i, i + 16));
  });

  it('a JWK carrying d (EC or RSA) → private_key_rejected', () => {
    const ec = jwkOf(privateKey);
    expect(ec.d).toBeTypeOf('string');
    expect(codeOf(ec)).toBe('private_key_rejected');
    expect(codeOf(JSON.stringify(ec))).toBe('private_key_rejected');
    expect(errorOf(ec).message).not.toContain(String(ec.d));
    expect(codeOf(jwkOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey))).toBe('private_key_rejected');
  });
});

describe('parsePublicKey: malformed input → invalid_public_key', () => {
  const { publicKey } = p256();
  const pem = spkiPem(publicKey);
  const der = canonicalSpkiDer(publicKey);
  const jwk = jwkOf(publicKey);
  const flipLastByte = (b64u: string): string => {
    const b = Buffer.from(b64u, 'base64url');
    b[31]! ^= 1;
    return b.toString('base64url');
  };

  it.each([
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an array', [pem]],
    ['a boolean', true],
    ['a Buffer', der],
    ['a function', () => pem],
    ['an empty string', ''],
    ['plain text', 'hello'],
    ['a JSON array string', JSON.stringify([jwk])],
    ['broken JSON', '{"kty":"EC",'],
    ['garbage PEM body', '-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n'],
    ['random bytes under PUBLIC KEY', pemOf('PUBLIC KEY', Buffer.from('00112233445566778899', 'hex'))],
    ['truncated PEM', pem.slice(0, 60)],
    ['mismatched END label', pem.replace('END PUBLIC KEY', 'END CERTIFICATE')],
    ['text before the block', `my key:\n${pem}`],
    ['garbage after the block', `${pem}garbage`],
    ['two PEM blocks', pem + spkiPem(p256().publicKey)],
    ['trailing bytes after the DER', pemOf('PUBLIC KEY', Buffer.concat([der, Buffer.from([0])]))],
    ['an encapsulated header', pem.replace('-----\n', '-----\nProc-Type: 4,ENCRYPTED\n\n')],
    ['an input over 16 KiB', pem.replace('-----\n', `-----\n${' '.repeat(17 * 1024)}\n`)],
    ['an unknown PEM label', pem.replace(/PUBLIC KEY/g, 'CERTIFICATE REQUEST')],
    ['garbage under CERTIFICATE', pemOf('CERTIFICATE', Buffer.from('3003020100', 'hex'))],
    ['an SPKI under CERTIFICATE', pemOf('CERTIFICATE', der)],
    ['the point at infinity', pemOf('PUBLIC KEY', Buffer.from('3019301306072a8648ce3d020106082a8648ce3d030107030200' + '00', 'hex'))],
    ['a JWK without kty', { crv: 'P-256', x: jwk.x, y: jwk.y }],
    ['a JWK without crv', { kty: 'EC', x: jwk.x, y: jwk.y }],
    ['a JWK without y', { kty: 'EC', crv: 'P-256', x: jwk.x }],
    ['a JWK with numeric x', { ...jwk, x: 1 }],
    ['a JWK with padded x', { ...jwk, x: `${String(jwk.x)}=` }],
    ['a JWK with standard-base64 characters', { ...jwk, x: String(jwk.x).slice(0, 42) + '+' }],
    ['a JWK with a 33-byte x', { ...jwk, x: Buffer.concat([Buffer.from([0]), Buffer.from(String(jwk.x), 'base64url')]).toString('base64url') }],
    ['a JWK with a 31-byte y', { ...jwk, y: Buffer.from(String(jwk.y), 'base64url').subarray(1).toString('base64url') }],
    ['an off-curve JWK', { ...jwk, y: flipLastByte(String(jwk.y)) }],
    ['a JWK with x ≥ p', { ...jwk, x: Buffer.alloc(32, 0xff).toString('base64url') }],
  ])('%s', (_name, input) => {
    expect(codeOf(input)).toBe('invalid_public_key');
  });

  it('other key types and curves in JWKs get their precise codes', () => {
    expect(codeOf({ kty: 'OKP', crv: 'Ed25519', x: 'AAAA' })).toBe('unsupported_key_type');
    expect(codeOf({ kty: 'oct', k: 'AAAA' })).toBe('unsupported_key_type');
    expect(codeOf({ ...jwk, crv: 'P-384' })).toBe('unsupported_curve');
    expect(codeOf({ ...jwk, crv: 'secp256k1' })).toBe('unsupported_curve');
  });

  it('wraps foreign errors: a throwing getter becomes invalid_public_key with a cause', () => {
    const hostile = {
      get kty(): string {
        throw new Error('boom');
      },
    };
    const e = errorOf(hostile);
    expect(e.code).toBe('invalid_public_key');
    expect(e.cause).toBeInstanceOf(Error);
  });

  it('never throws anything but a ProtocolError for mutated keys and certificates', () => {
    const cert = certs.selfSigned({ key: 'p256' });
    const certDer = Buffer.from(cert.pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    for (const [label, base] of [['PUBLIC KEY', der], ['CERTIFICATE', certDer]] as const) {
      for (let i = 0; i < base.length; i++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const mutated = Buffer.from(base);
          mutated[i]! ^= mask;
          codeOf(pemOf(label, mutated)); // asserts ProtocolError on refusal
        }
        codeOf(pemOf(label, base.subarray(0, i)));
      }
    }
  });
});

describe('publicKeyFromSpkiDer', () => {
  it('round-trips a canonical DER and accepts any valid P-256 SPKI', () => {
    const { publicKey } = p256();
    expect(publicKeyFromSpkiDer(canonicalSpkiDer(publicKey)).equals(publicKey)).toBe(true);
    const compressed = Buffer.from(compressedSpkiPem(publicKey).replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    expect(publicKeyFromSpkiDer(compressed).equals(publicKey)).toBe(true);
  });

  it.each([
    ['garbage', Buffer.from('deadbeef', 'hex')],
    ['a P-384 SPKI', generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'der' })],
    ['a PKCS#8 private key', p256().privateKey.export({ type: 'pkcs8', format: 'der' })],
    ['not bytes', 'abc' as unknown as Uint8Array],
  ])('refuses %s with invalid_public_key', (_name, input) => {
    expect(protocolCodeOf(() => publicKeyFromSpkiDer(input))).toBe('invalid_public_key');
  });
});

describe('P-256 point validation (our own check, independent of OpenSSL)', () => {
  const G = {
    x: Buffer.from('6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296', 'hex'),
    y: Buffer.from('4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5', 'hex'),
  };
  const p = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex');
  const refusal = protocolCodeOf;

  it('accepts the generator and decompresses it both ways', () => {
    expect(validatePoint(G.x, G.y).y.equals(G.y)).toBe(true);
    const compressed = Buffer.concat([Buffer.from([0x02 | (G.y[31]! & 1)]), G.x]);
    expect(decodePoint(compressed).y.equals(G.y)).toBe(true);
    const other = decodePoint(Buffer.concat([Buffer.from([0x03 ^ (G.y[31]! & 1)]), G.x]));
    expect(other.y.equals(G.y)).toBe(false);
    expect(validatePoint(other.x, other.y).x.equals(G.x)).toBe(true);
  });

  it('refuses off-curve points, coordinates ≥ p, infinity and hybrid encodings', () => {
    const yOff = Buffer.from(G.y);
    yOff[31]! ^= 1;
    expect(refusal(() => validatePoint(G.x, yOff))).toBe('invalid_public_key');
    expect(refusal(() => validatePoint(Buffer.alloc(32), Buffer.alloc(32)))).toBe('invalid_public_key');
    expect(refusal(() => validatePoint(p, G.y))).toBe('invalid_public_key');
    expect(refusal(() => decodePoint(Buffer.from([0])))).toBe('invalid_public_key');
    expect(refusal(() => decodePoint(Buffer.concat([Buffer.from([0x06 | (G.y[31]! & 1)]), G.x, G.y])))).toBe('invalid_public_key');
    expect(refusal(() => decodePoint(Buffer.concat([Buffer.from([0x04]), G.x])))).toBe('invalid_public_key');
  });
});
