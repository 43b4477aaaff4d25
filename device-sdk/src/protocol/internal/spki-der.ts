import { ProtocolError } from '../errors.ts';
import { contentOf, encodingOf, readChildren, readTlv, readWhole, TAG, type Tlv } from './der-reader.ts';
import { decodePoint, type P256Point } from './p256-point.ts';
import { PRIVATE_KEY_MESSAGE } from './pem.ts';
import { readRsaPublicKey, RSA_ENCRYPTION, type RsaComponents } from './rsa-key.ts';

/** Algorithm OIDs (DER content, hex) of SubjectPublicKeyInfo.algorithm (RFC 5280 §4.1.2.7). */
const ID_EC_PUBLIC_KEY = '2a8648ce3d0201'; // 1.2.840.10045.2.1, RFC 5480 §2.1.1
const PRIME256V1 = '2a8648ce3d030107'; // 1.2.840.10045.3.1.7, RFC 5480 §2.1.1.1

function invalid(reason: string): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`);
}

/**
 * A private-key structure starts with a small version INTEGER: PKCS#8 (RFC 5208 §5,
 * version 0/1), SEC 1 ECPrivateKey (RFC 5915 §3, version 1), PKCS#1 RSAPrivateKey (0/1).
 * A PKCS#1 RSAPublicKey also starts with an INTEGER, but a long one (the modulus).
 */
function isPrivateKeyStructure(der: Uint8Array, first: Tlv): boolean {
  return first.tag === TAG.integer && first.end - first.start === 1 && der[first.start]! <= 2;
}

/** The key a SubjectPublicKeyInfo holds: a P-256 point, or RSA components. */
export type SpkiKey = { type: 'ec'; point: P256Point } | { type: 'rsa'; rsa: RsaComponents };

/**
 * Parses a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) holding a P-256 or an RSA key.
 * Refusals (protocol.md §Keys, §RSA keys):
 * - a private-key structure → `private_key_rejected`;
 * - an algorithm other than id-ecPublicKey or rsaEncryption (RSASSA-PSS, Ed25519, DSA, …) →
 *   `unsupported_key_type`;
 * - rsaEncryption without NULL parameters (RFC 3279 §2.3.1), or a malformed RSAPublicKey →
 *   `invalid_public_key` (its size and exponent are `validateRsa`'s to judge);
 * - an EC key on a named curve other than prime256v1, or with explicit or implicit curve
 *   parameters → `unsupported_curve` (RFC 5480 §2.1.1: `specifiedCurve` and `implicitCurve`
 *   MUST NOT be used, so we never compare explicit parameters against P-256);
 * - anything malformed, a point off the curve, the point at infinity → `invalid_public_key`.
 */
export function parseSpki(der: Uint8Array): SpkiKey {
  const outer = readWhole(der);
  if (outer.tag !== TAG.sequence) throw invalid('SubjectPublicKeyInfo must be a SEQUENCE');
  const parts = readChildren(der, outer);
  if (parts[0] && isPrivateKeyStructure(der, parts[0])) {
    throw new ProtocolError('private_key_rejected', PRIVATE_KEY_MESSAGE);
  }
  const [algorithm, subjectPublicKey] = parts;
  if (parts.length !== 2 || !algorithm || !subjectPublicKey) {
    throw invalid('SubjectPublicKeyInfo must hold an algorithm and a key');
  }
  if (algorithm.tag !== TAG.sequence || subjectPublicKey.tag !== TAG.bitString) {
    throw invalid('malformed SubjectPublicKeyInfo');
  }
  const algParts = readChildren(der, algorithm);
  const [oid, params] = algParts;
  if (!oid || oid.tag !== TAG.oid || algParts.length > 2) throw invalid('malformed AlgorithmIdentifier');
  const algorithmOid = Buffer.from(contentOf(der, oid)).toString('hex');
  if (algorithmOid === RSA_ENCRYPTION) {
    if (params?.tag !== TAG.null || params.end !== params.start) throw invalid('rsaEncryption parameters must be NULL');
    return { type: 'rsa', rsa: readRsaPublicKey(bitStringOctets(der, subjectPublicKey)) };
  }
  if (algorithmOid !== ID_EC_PUBLIC_KEY) throw new ProtocolError('unsupported_key_type', 'only EC P-256 and RSA keys are supported');
  checkNamedCurve(der, params);
  return { type: 'ec', point: decodePoint(bitStringOctets(der, subjectPublicKey)) };
}

/** RFC 5480 §2.1.1: ECParameters must be the namedCurve prime256v1. */
function checkNamedCurve(der: Uint8Array, params: Tlv | undefined): void {
  if (!params) throw invalid('EC key without curve parameters');
  if (params.tag === TAG.oid) {
    if (Buffer.from(contentOf(der, params)).toString('hex') === PRIME256V1) return;
    throw new ProtocolError('unsupported_curve', 'only the P-256 curve is supported');
  }
  if (params.tag === TAG.sequence || params.tag === TAG.null) {
    throw new ProtocolError('unsupported_curve', 'EC keys must name the P-256 curve (no explicit parameters)');
  }
  throw invalid('malformed EC parameters');
}

/** The octets of a BIT STRING whose bit length is a multiple of 8 (X.690 §8.6.2). */
function bitStringOctets(der: Uint8Array, bits: Tlv): Uint8Array {
  const content = contentOf(der, bits);
  if (content.length < 1 || content[0] !== 0) throw invalid('malformed public key BIT STRING');
  return content.subarray(1);
}

/**
 * Extracts the SubjectPublicKeyInfo encoding from a DER certificate (RFC 5280 §4.1):
 * Certificate.tbsCertificate = { [0] version OPTIONAL, serialNumber, signature, issuer,
 * validity, subject, subjectPublicKeyInfo, … }.
 */
export function spkiOfCertificate(der: Uint8Array): Uint8Array {
  const cert = readWhole(der);
  if (cert.tag !== TAG.sequence) throw invalid('certificate must be a SEQUENCE');
  const tbs = readTlv(der, cert.start, cert.end);
  if (tbs.tag !== TAG.sequence) throw invalid('malformed certificate');
  const fields = readChildren(der, tbs);
  const skip = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT Version
  const spki = fields[skip + 5];
  if (!spki || spki.tag !== TAG.sequence) throw invalid('certificate without a subject public key');
  return encodingOf(der, spki);
}
