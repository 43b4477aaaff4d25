import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ProtocolError, isProtocolError } from './errors.ts';
import { fingerprintOf, spkiFromPoint } from './fingerprint.ts';
import { keyOfJwk } from './internal/jwk.ts';
import { decodeSinglePem, encodePem, looksLikePrivateKey, PRIVATE_KEY_MESSAGE } from './internal/pem.ts';
import { readRsaPublicKey, rsaSpkiFromComponents, validateRsa } from './internal/rsa-key.ts';
import { parseSpki, spkiOfCertificate, type SpkiKey } from './internal/spki-der.ts';

/** The format a public key arrived in (protocol.md §Keys). */
export type PublicKeyFormat = 'spki' | 'jwk' | 'x509';

/** The type of a key, and the one signature algorithm it verifies (protocol.md §Cloud IoT Core tokens: `alg` is bound to the key type). */
export type KeyType = 'ec' | 'rsa';
export type SignatureAlgorithm = 'ES256' | 'RS256';

/** A validated public key in canonical form: P-256, or RSA where the caller allows it. */
export interface ParsedPublicKey {
  format: PublicKeyFormat;
  keyType: KeyType;
  /** ES256 for P-256, RS256 for RSA: the only algorithm this key verifies */
  algorithm: SignatureAlgorithm;
  /** Public key, built from the canonical DER. */
  key: KeyObject;
  /** Canonical SPKI DER (P-256: named curve, uncompressed point; RSA: minimal INTEGERs); see `canonicalSpkiDer`. */
  spkiDer: Buffer;
  /** `spkiDer` as a `PUBLIC KEY` PEM. */
  spkiPem: string;
  /** `fingerprintOf(spkiDer)`: SHA-256 of the canonical SPKI DER, lowercase hex. */
  fingerprint: string;
  /** Epoch ms: an X.509 certificate's notAfter, else null. */
  expiresAt: number | null;
  /** Epoch ms: an X.509 certificate's notBefore, else null. */
  notBefore: number | null;
}

export interface ParsePublicKeyOptions {
  /** epoch ms the certificate validity is judged at; default `Date.now()` */
  now?: number;
  /**
   * Also accept RSA keys of 2048 to 8192 bits (protocol.md §RSA keys: only for devices with a Cloud
   * IoT Core binding). Default false: every RSA key is `unsupported_key_type`, as protocol.md says.
   */
  allowRsa?: boolean;
  /**
   * `refuse` (default): a certificate past its notAfter is `certificate_expired`. `keep`: it is read
   * and its notAfter returned, for the caller to decide (an import keeps credentials as they were).
   */
  expiredCertificate?: 'refuse' | 'keep';
}

/** Inputs larger than this are refused before they are parsed. */
export const MAX_PUBLIC_KEY_INPUT = 16 * 1024;

const EC_ONLY = 'only EC P-256 keys are supported';

function invalid(reason: string, cause?: unknown): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`, { cause });
}

/**
 * Parses a device or service-account public key (protocol.md §Keys): an SPKI PEM
 * (`-----BEGIN PUBLIC KEY-----`, compressed or uncompressed point), an X.509 certificate PEM,
 * a JWK object, or a string holding JWK JSON. EC P-256 only, unless `opts.allowRsa` also admits
 * RSA keys of 2048..8192 bits (SPKI, PKCS#1 `RSA PUBLIC KEY`, certificate or JWK).
 *
 * Throws only `ProtocolError`, with code `private_key_rejected`, `unsupported_key_type`,
 * `unsupported_curve`, `key_too_small`, `invalid_public_key` or `certificate_expired` (notAfter ≤
 * `opts.now`, unless `opts.expiredCertificate` is `keep`). Messages never contain key material.
 *
 * @example
 * ```ts
 * const parsed = parsePublicKey(req.body.publicKey);
 * registry.addCredential(deviceId, parsed.spkiDer, parsed.fingerprint, parsed.expiresAt);
 * ```
 */
export function parsePublicKey(input: unknown, opts?: ParsePublicKeyOptions): ParsedPublicKey {
  const o = { now: opts?.now ?? Date.now(), allowRsa: opts?.allowRsa === true, keepExpired: opts?.expiredCertificate === 'keep' };
  try {
    if (typeof input === 'string') return parseString(input, o);
    if (isPlainObject(input)) return finish('jwk', keyOfJwk(input), null, null, o.allowRsa);
    throw invalid('expected a PEM string, a JWK object or JWK JSON');
  } catch (e) {
    if (isProtocolError(e)) throw e;
    throw invalid('could not be parsed', e);
  }
}

/**
 * A KeyObject from a stored SPKI DER (for the registry's and broker's key caches): a P-256 key, or an
 * RSA key within the sizes `parsePublicKey` admits. Throws `invalid_public_key` otherwise.
 *
 * @example
 * ```ts
 * const key = publicKeyFromSpkiDer(row.spki_der);
 * ```
 */
export function publicKeyFromSpkiDer(spkiDer: Uint8Array): KeyObject {
  try {
    if (!(spkiDer instanceof Uint8Array)) throw invalid('SPKI DER must be bytes');
    return keyFromCanonical(canonicalOf(parseSpki(spkiDer), true).spkiDer);
  } catch (e) {
    if (isProtocolError(e, 'invalid_public_key')) throw e;
    throw invalid('stored key is not a valid P-256 or RSA SPKI', e);
  }
}

interface Options {
  now: number;
  allowRsa: boolean;
  keepExpired: boolean;
}

function parseString(text: string, o: Options): ParsedPublicKey {
  // protocol.md §Keys: say so for a private key, whatever else is wrong with the input.
  if (looksLikePrivateKey(text)) throw new ProtocolError('private_key_rejected', PRIVATE_KEY_MESSAGE);
  if (text.length > MAX_PUBLIC_KEY_INPUT) throw invalid('input larger than 16 KiB');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return finish('jwk', keyOfJwk(parseJwkJson(trimmed)), null, null, o.allowRsa);
  if (!trimmed.startsWith('-----BEGIN ')) throw invalid('expected a PEM block or JWK JSON');
  const { label, der } = decodeSinglePem(trimmed);
  switch (label) {
    case 'PUBLIC KEY':
      return finish('spki', parseSpki(der), null, null, o.allowRsa);
    case 'CERTIFICATE':
      return parseCertificate(der, o);
    case 'RSA PUBLIC KEY': // PKCS#1 (RFC 8017 §A.1.1)
      if (!o.allowRsa) throw new ProtocolError('unsupported_key_type', EC_ONLY);
      return finish('spki', { type: 'rsa', rsa: readRsaPublicKey(der) }, null, null, true);
    default:
      throw invalid('expected a PUBLIC KEY or CERTIFICATE PEM block');
  }
}

function parseJwkJson(json: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw invalid('malformed JWK JSON', e);
  }
  if (!isPlainObject(value)) throw invalid('JWK must be a JSON object');
  return value;
}

/** protocol.md §Keys: the certificate's subject key, and its own expiry as the credential's. */
function parseCertificate(der: Buffer, o: Options): ParsedPublicKey {
  const key = parseSpki(spkiOfCertificate(der));
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (e) {
    throw invalid('certificate could not be parsed', e);
  }
  const notBefore = Date.parse(cert.validFrom);
  const expiresAt = Date.parse(cert.validTo);
  if (!Number.isFinite(notBefore) || !Number.isFinite(expiresAt)) throw invalid('certificate validity unreadable');
  const parsed = finish('x509', key, expiresAt, notBefore, o.allowRsa);
  if (expiresAt <= o.now && !o.keepExpired) throw new ProtocolError('certificate_expired', 'the certificate has expired');
  return parsed;
}

/** The canonical SPKI of a key read from any format; RSA only where allowed, and only of an accepted size. */
function canonicalOf(key: SpkiKey, allowRsa: boolean): { keyType: KeyType; spkiDer: Buffer } {
  if (key.type === 'ec') return { keyType: 'ec', spkiDer: spkiFromPoint(key.point.x, key.point.y) };
  if (!allowRsa) throw new ProtocolError('unsupported_key_type', EC_ONLY);
  validateRsa(key.rsa);
  return { keyType: 'rsa', spkiDer: rsaSpkiFromComponents(key.rsa.n, key.rsa.e) };
}

function finish(format: PublicKeyFormat, spki: SpkiKey, expiresAt: number | null, notBefore: number | null, allowRsa: boolean): ParsedPublicKey {
  const { keyType, spkiDer } = canonicalOf(spki, allowRsa);
  // The key is already validated; the KeyObject (≈ 0.1 ms to import) is built only when
  // someone verifies with it, so batch registration does not pay for keys it only stores.
  let key: KeyObject | undefined;
  return {
    format,
    keyType,
    algorithm: keyType === 'ec' ? 'ES256' : 'RS256',
    get key() {
      return (key ??= keyFromCanonical(spkiDer));
    },
    spkiDer,
    spkiPem: encodePem('PUBLIC KEY', spkiDer),
    fingerprint: fingerprintOf(spkiDer),
    expiresAt,
    notBefore,
  };
}

function keyFromCanonical(spkiDer: Buffer): KeyObject {
  try {
    return createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (e) {
    throw invalid('key rejected by the crypto library', e);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
