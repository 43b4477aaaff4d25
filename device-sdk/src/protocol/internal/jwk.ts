import { ProtocolError } from '../errors.ts';
import { validatePoint } from './p256-point.ts';
import { PRIVATE_KEY_MESSAGE } from './pem.ts';
import type { RsaComponents } from './rsa-key.ts';
import type { SpkiKey } from './spki-der.ts';

function invalid(reason: string): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`);
}

/** RFC 7518 §6.2.2 and §6.3.2: the members that make an EC or RSA JWK private. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'] as const;
/** The algorithm each key type verifies (RFC 7518 §3.1): a JWK's `alg`, when present, must name it. */
const ALG_OF_KTY: Readonly<Record<string, string>> = { EC: 'ES256', RSA: 'RS256' };
const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The key a public JWK holds (RFC 7517, RFC 7518 §6): EC on P-256 (`crv`, 32-byte `x` and `y`) or RSA
 * (`n`, `e`). Each number is unpadded, canonical base64url; RSA numbers use the fewest octets
 * (RFC 7518 §6.3.1.1). A JWK must allow verification: `use`, when present, is `sig`; `key_ops`, when
 * present, holds `verify`; `alg`, when present, is the key type's algorithm (ES256, RS256).
 * Refusals: a private member → `private_key_rejected`; another `kty` → `unsupported_key_type`;
 * another curve → `unsupported_curve`; anything else → `invalid_public_key`.
 */
export function keyOfJwk(jwk: Record<string, unknown>): SpkiKey {
  if (PRIVATE_MEMBERS.some((m) => Object.hasOwn(jwk, m))) throw new ProtocolError('private_key_rejected', PRIVATE_KEY_MESSAGE);
  const { kty, crv, use, key_ops: ops, alg } = jwk;
  if (typeof kty !== 'string') throw invalid('JWK without kty');
  if (kty !== 'EC' && kty !== 'RSA') throw new ProtocolError('unsupported_key_type', 'only EC P-256 and RSA keys are supported');
  // RFC 7517 §4.2, §4.3: a key meant for encryption, or not for verifying, is not a connect-token key
  if (use !== undefined && use !== 'sig') throw invalid('JWK use must be "sig"');
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) throw invalid('JWK key_ops must include "verify"');
  if (alg !== undefined && alg !== ALG_OF_KTY[kty]) throw invalid(`a ${kty} JWK verifies ${ALG_OF_KTY[kty]} only`);
  if (kty === 'RSA') return { type: 'rsa', rsa: rsaOfJwk(jwk) };
  if (typeof crv !== 'string') throw invalid('EC JWK without crv');
  if (crv !== 'P-256') throw new ProtocolError('unsupported_curve', 'only the P-256 curve is supported');
  return { type: 'ec', point: validatePoint(octets(jwk.x, 'x', 32), octets(jwk.y, 'y', 32)) };
}

function rsaOfJwk(jwk: Record<string, unknown>): RsaComponents {
  const n = octets(jwk.n, 'n');
  const e = octets(jwk.e, 'e');
  if (n[0] === 0 || e[0] === 0) throw invalid('JWK n and e must not have leading zero octets');
  return { n, e };
}

/** Strict base64url: unpadded, canonical (the unused low bits of the last character are zero, RFC 4648 §3.5). */
function octets(value: unknown, name: string, length?: number): Buffer {
  const bytes = typeof value === 'string' && B64URL.test(value) ? Buffer.from(value, 'base64url') : null;
  if (bytes === null || bytes.length === 0 || bytes.toString('base64url') !== value || (length !== undefined && bytes.length !== length)) {
    throw invalid(`JWK ${name} must be ${length === undefined ? '' : `${length}-byte `}unpadded base64url`);
  }
  return bytes;
}
