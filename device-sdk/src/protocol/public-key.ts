import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ProtocolError, isProtocolError } from './errors.ts';
import { fingerprintOf, spkiFromPoint } from './fingerprint.ts';
import { validatePoint, type P256Point } from './internal/p256-point.ts';
import { decodeSinglePem, encodePem, looksLikePrivateKey, PRIVATE_KEY_MESSAGE } from './internal/pem.ts';
import { parseSpkiDer, spkiOfCertificate } from './internal/spki-der.ts';

/** The format a public key arrived in (protocol.md §Keys). */
export type PublicKeyFormat = 'spki' | 'jwk' | 'x509';

/** A validated P-256 public key in canonical form. */
export interface ParsedPublicKey {
  format: PublicKeyFormat;
  /** Public P-256 key, built from the canonical DER. */
  key: KeyObject;
  /** Canonical SPKI DER (named curve, uncompressed point); see `canonicalSpkiDer`. */
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

/** Inputs larger than this are refused before they are parsed. */
export const MAX_PUBLIC_KEY_INPUT = 16 * 1024;

function invalid(reason: string, cause?: unknown): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`, { cause });
}

/**
 * Parses a device or service-account public key (protocol.md §Keys): an SPKI PEM
 * (`-----BEGIN PUBLIC KEY-----`, compressed or uncompressed point), an X.509 certificate PEM,
 * a JWK object, or a string holding JWK JSON. Only EC P-256 is accepted.
 *
 * Throws only `ProtocolError`, with code `private_key_rejected`, `unsupported_key_type`,
 * `unsupported_curve`, `invalid_public_key` or `certificate_expired` (notAfter ≤ `opts.now`,
 * default `Date.now()`). Messages never contain key material.
 *
 * @example
 * ```ts
 * const parsed = parsePublicKey(req.body.publicKey);
 * registry.addCredential(deviceId, parsed.spkiDer, parsed.fingerprint, parsed.expiresAt);
 * ```
 */
export function parsePublicKey(input: unknown, opts?: { now?: number }): ParsedPublicKey {
  try {
    return parseUnchecked(input, opts?.now ?? Date.now());
  } catch (e) {
    if (isProtocolError(e)) throw e;
    throw invalid('could not be parsed', e);
  }
}

/**
 * A KeyObject from a stored SPKI DER (for the registry's and broker's key caches).
 * Throws `invalid_public_key` unless the DER is a valid P-256 SubjectPublicKeyInfo.
 *
 * @example
 * ```ts
 * const key = publicKeyFromSpkiDer(row.spki_der);
 * ```
 */
export function publicKeyFromSpkiDer(spkiDer: Uint8Array): KeyObject {
  try {
    if (!(spkiDer instanceof Uint8Array)) throw invalid('SPKI DER must be bytes');
    const point = parseSpkiDer(spkiDer);
    return keyFromCanonical(spkiFromPoint(point.x, point.y));
  } catch (e) {
    if (isProtocolError(e, 'invalid_public_key')) throw e;
    throw invalid('stored key is not a valid P-256 SPKI', e);
  }
}

function parseUnchecked(input: unknown, now: number): ParsedPublicKey {
  if (typeof input === 'string') return parseString(input, now);
  if (isPlainObject(input)) return finish('jwk', pointOfJwk(input), null, null);
  throw invalid('expected a PEM string, a JWK object or JWK JSON');
}

function parseString(text: string, now: number): ParsedPublicKey {
  // protocol.md §Keys: say so for a private key, whatever else is wrong with the input.
  if (looksLikePrivateKey(text)) throw new ProtocolError('private_key_rejected', PRIVATE_KEY_MESSAGE);
  if (text.length > MAX_PUBLIC_KEY_INPUT) throw invalid('input larger than 16 KiB');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return parseJwkJson(trimmed);
  if (!trimmed.startsWith('-----BEGIN ')) throw invalid('expected a PEM block or JWK JSON');
  const { label, der } = decodeSinglePem(trimmed);
  switch (label) {
    case 'PUBLIC KEY':
      return finish('spki', parseSpkiDer(der), null, null);
    case 'CERTIFICATE':
      return parseCertificate(der, now);
    case 'RSA PUBLIC KEY': // PKCS#1
      throw new ProtocolError('unsupported_key_type', 'only EC P-256 keys are supported');
    default:
      throw invalid('expected a PUBLIC KEY or CERTIFICATE PEM block');
  }
}

function parseJwkJson(json: string): ParsedPublicKey {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw invalid('malformed JWK JSON', e);
  }
  if (!isPlainObject(value)) throw invalid('JWK must be a JSON object');
  return finish('jwk', pointOfJwk(value), null, null);
}

const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;

/** RFC 7518 §6.2.1: an EC public JWK on P-256 with 32-byte unpadded base64url x and y. */
function pointOfJwk(jwk: Record<string, unknown>): P256Point {
  // RFC 7518 §6.2.2.1: `d` makes it a private key (RFC 7518 §6.3.2 for RSA).
  if (Object.hasOwn(jwk, 'd')) throw new ProtocolError('private_key_rejected', PRIVATE_KEY_MESSAGE);
  const { kty, crv, x, y } = jwk;
  if (typeof kty !== 'string') throw invalid('JWK without kty');
  if (kty !== 'EC') throw new ProtocolError('unsupported_key_type', 'only EC P-256 keys are supported');
  if (typeof crv !== 'string') throw invalid('EC JWK without crv');
  if (crv !== 'P-256') throw new ProtocolError('unsupported_curve', 'only the P-256 curve is supported');
  return validatePoint(coordinate(x), coordinate(y));
}

function coordinate(value: unknown): Buffer {
  if (typeof value !== 'string' || !B64URL_32.test(value)) {
    throw invalid('JWK x and y must be 32-byte unpadded base64url');
  }
  const bytes = Buffer.from(value, 'base64url');
  // The last character carries 2 unused bits that must be zero (RFC 4648 §3.5).
  if (bytes.length !== 32 || bytes.toString('base64url') !== value) {
    throw invalid('JWK x and y must be 32-byte unpadded base64url');
  }
  return bytes;
}

/** protocol.md §Keys: the certificate's subject key, and its own expiry as the credential's. */
function parseCertificate(der: Buffer, now: number): ParsedPublicKey {
  const point = parseSpkiDer(spkiOfCertificate(der));
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (e) {
    throw invalid('certificate could not be parsed', e);
  }
  const notBefore = Date.parse(cert.validFrom);
  const expiresAt = Date.parse(cert.validTo);
  if (!Number.isFinite(notBefore) || !Number.isFinite(expiresAt)) throw invalid('certificate validity unreadable');
  if (expiresAt <= now) throw new ProtocolError('certificate_expired', 'the certificate has expired');
  return finish('x509', point, expiresAt, notBefore);
}

function finish(
  format: PublicKeyFormat,
  point: P256Point,
  expiresAt: number | null,
  notBefore: number | null,
): ParsedPublicKey {
  const spkiDer = spkiFromPoint(point.x, point.y);
  // The point is already validated; the KeyObject (≈ 0.1 ms to import) is built only when
  // someone verifies with it, so batch registration does not pay for keys it only stores.
  let key: KeyObject | undefined;
  return {
    format,
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
