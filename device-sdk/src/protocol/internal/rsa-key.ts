import { ProtocolError } from '../errors.ts';
import { MAX_RSA_BITS, MIN_RSA_BITS } from '../limits.ts';
import { contentOf, readChildren, readWhole, TAG, type Tlv } from './der-reader.ts';
import { bitString, DER_NULL, oid, sequence, unsignedInteger } from './der-writer.ts';

/** rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 Appendix C): the SubjectPublicKeyInfo algorithm of an RSA key. */
export const RSA_ENCRYPTION = '2a864886f70d010101';

/** An RSA public key as read, before {@link validateRsa} judges its size and exponent. */
export interface RsaComponents {
  /** modulus, big-endian, no leading zero octet */
  readonly n: Buffer;
  /** public exponent, big-endian, no leading zero octet */
  readonly e: Buffer;
}

function invalid(reason: string): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`);
}

/**
 * A DER INTEGER that must be positive, in its minimal encoding (X.690 §8.3.2: no superfluous
 * leading 0x00 or 0xFF octet). Returns the magnitude without a leading zero octet.
 */
function positiveInteger(der: Uint8Array, t: Tlv | undefined, what: string): Buffer {
  if (t === undefined || t.tag !== TAG.integer) throw invalid(`RSA ${what} must be an INTEGER`);
  const c = contentOf(der, t);
  if (c.length === 0) throw invalid(`empty RSA ${what}`);
  if (c.length > 1 && ((c[0] === 0 && c[1]! < 0x80) || (c[0] === 0xff && c[1]! >= 0x80))) throw invalid(`non-minimal RSA ${what}`);
  if (c[0]! >= 0x80) throw invalid(`negative RSA ${what}`);
  return Buffer.from(c[0] === 0 ? c.subarray(1) : c);
}

function bitLength(magnitude: Buffer): number {
  return magnitude.length === 0 ? 0 : (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]!));
}

/**
 * Reads a PKCS#1 RSAPublicKey (RFC 8017 §A.1.1: SEQUENCE { modulus INTEGER, publicExponent
 * INTEGER }) strictly. Its size and exponent are {@link validateRsa}'s to judge.
 */
export function readRsaPublicKey(der: Uint8Array): RsaComponents {
  const outer = readWhole(der);
  if (outer.tag !== TAG.sequence) throw invalid('RSAPublicKey must be a SEQUENCE');
  const parts = readChildren(der, outer);
  if (parts.length !== 2) throw invalid('RSAPublicKey must hold a modulus and an exponent');
  return { n: positiveInteger(der, parts[0], 'modulus'), e: positiveInteger(der, parts[1], 'exponent') };
}

/**
 * protocol.md §RSA keys: RSA keys are at least 2048 bits. Returns the modulus's bit length after
 * checking, on magnitudes without leading zero octets:
 * - the modulus has {@link MIN_RSA_BITS}..{@link MAX_RSA_BITS} bits (smaller is `key_too_small`;
 *   larger is refused so that one verification stays cheap) and is odd (a product of odd primes);
 * - the exponent is odd, at least 3 and below 2^256 (FIPS 186-5 §A.1.1 bounds it by 2^256; 3 stays
 *   allowed for keys made before the 2^16 floor, as the Wycheproof vectors expect), hence below n.
 */
export function validateRsa({ n, e }: RsaComponents): number {
  const bits = bitLength(n);
  if (bits < MIN_RSA_BITS) throw new ProtocolError('key_too_small', `RSA keys must have at least ${MIN_RSA_BITS} bits (this one has ${bits})`);
  if (bits > MAX_RSA_BITS) throw invalid(`RSA keys may have at most ${MAX_RSA_BITS} bits`);
  if ((n[n.length - 1]! & 1) === 0) throw invalid('the RSA modulus is even');
  const eBits = bitLength(e);
  if (eBits > 256 || (e[e.length - 1]! & 1) === 0 || (eBits <= 2 && e[e.length - 1]! < 3)) {
    throw invalid('the RSA public exponent must be odd, at least 3 and below 2^256');
  }
  return bits;
}

/**
 * The canonical SubjectPublicKeyInfo of an RSA key (RFC 8017 §A.1, RFC 3279 §2.3.1): algorithm
 * rsaEncryption with NULL parameters, the RSAPublicKey with minimal INTEGERs. Every encoding of
 * one key maps to these bytes, which the fingerprint hashes.
 */
export function rsaSpkiFromComponents(n: Uint8Array, e: Uint8Array): Buffer {
  const rsaPublicKey = sequence(unsignedInteger(n), unsignedInteger(e));
  return sequence(sequence(oid(RSA_ENCRYPTION), DER_NULL), bitString(rsaPublicKey));
}
