import { createHash, type KeyObject } from 'node:crypto';
import { P256_COORDINATE_BYTES } from './internal/p256-point.ts';
import { rsaSpkiFromComponents } from './internal/rsa-key.ts';
import { parseSpki } from './internal/spki-der.ts';

/**
 * DER prefix of every P-256 SubjectPublicKeyInfo with an uncompressed point (RFC 5480 §2):
 * SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes, 0 unused bits) }.
 * Followed by `04‖x‖y`.
 */
export const P256_SPKI_PREFIX: Buffer = Buffer.from(
  '3059301306072a8648ce3d020106082a8648ce3d030107034200',
  'hex',
);
/** Length of a canonical P-256 SPKI DER: the prefix plus a 65-byte uncompressed point. */
export const P256_SPKI_LENGTH = P256_SPKI_PREFIX.length + 1 + 2 * P256_COORDINATE_BYTES;

/** The canonical SPKI DER for an (already validated) affine P-256 point. */
export function spkiFromPoint(x: Uint8Array, y: Uint8Array): Buffer {
  if (x.length !== P256_COORDINATE_BYTES || y.length !== P256_COORDINATE_BYTES) {
    throw new TypeError('P-256 coordinates must be 32 bytes each');
  }
  return Buffer.concat([P256_SPKI_PREFIX, Buffer.from([0x04]), x, y]);
}

/**
 * The canonical SPKI DER of a key (protocol.md §Keys, §RSA keys), whatever format it
 * arrived in (compressed-point PEM, JWK, certificate, PKCS#1):
 * - P-256: named-curve parameters and an uncompressed point;
 * - RSA: rsaEncryption with NULL parameters, modulus and exponent as minimal INTEGERs.
 * A private KeyObject yields the SPKI of its public half.
 * Throws TypeError for anything but an EC P-256 or an RSA KeyObject (caller misuse).
 *
 * @example
 * ```ts
 * const der = canonicalSpkiDer(createPublicKey(pem)); // P-256: 91 bytes, starts 3059301306…
 * ```
 */
export function canonicalSpkiDer(key: KeyObject): Buffer {
  if (key === null || typeof key !== 'object' || (key.type !== 'public' && key.type !== 'private')) {
    throw new TypeError('canonicalSpkiDer expects an EC P-256 or RSA KeyObject');
  }
  if (key.asymmetricKeyType === 'rsa') {
    const jwk = key.export({ format: 'jwk' });
    return rsaSpkiFromComponents(Buffer.from(String(jwk.n), 'base64url'), Buffer.from(String(jwk.e), 'base64url'));
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('canonicalSpkiDer expects an EC P-256 or RSA KeyObject');
  }
  const jwk = key.export({ format: 'jwk' });
  const x = Buffer.from(String(jwk.x), 'base64url');
  const y = Buffer.from(String(jwk.y), 'base64url');
  return spkiFromPoint(x, y);
}

/** A canonical P-256 SPKI: the fixed prefix and an uncompressed point. */
function isCanonicalP256(spkiDer: Uint8Array): boolean {
  return (
    spkiDer.length === P256_SPKI_LENGTH &&
    P256_SPKI_PREFIX.equals(spkiDer.subarray(0, P256_SPKI_PREFIX.length)) &&
    spkiDer[P256_SPKI_PREFIX.length] === 0x04
  );
}

/** A canonical RSA SPKI of an accepted size: parses, and re-encodes to the same bytes. */
function isCanonicalRsa(spkiDer: Uint8Array): boolean {
  try {
    const parsed = parseSpki(spkiDer);
    return parsed.type === 'rsa' && rsaSpkiFromComponents(parsed.rsa.n, parsed.rsa.e).equals(spkiDer);
  } catch {
    return false;
  }
}

/**
 * The credential fingerprint (protocol.md §Keys): SHA-256 of the canonical SPKI DER, as 64
 * lowercase hex characters. We pick SPKI-DER SHA-256 over the RFC 7638 JWK thumbprint because
 * operators can reproduce it with stock tools on any of the input formats:
 * `openssl pkey -pubin -in key.pem -outform DER -ec_conv_form uncompressed | sha256sum`
 * (for an RSA key, `openssl pkey -pubin -in key.pem -outform DER | sha256sum`).
 * Throws TypeError unless `spkiDer` is canonical (see {@link canonicalSpkiDer}): hashing any
 * other encoding of the same key would give a different fingerprint and defeat `key_in_use`.
 *
 * @example
 * ```ts
 * fingerprintOf(canonicalSpkiDer(key)) // 'a3f1…' (64 hex chars)
 * ```
 */
export function fingerprintOf(spkiDer: Uint8Array): string {
  if (!(spkiDer instanceof Uint8Array) || (!isCanonicalP256(spkiDer) && !isCanonicalRsa(spkiDer))) {
    throw new TypeError('fingerprintOf expects a canonical P-256 or RSA SPKI DER (see canonicalSpkiDer)');
  }
  return createHash('sha256').update(spkiDer).digest('hex');
}
