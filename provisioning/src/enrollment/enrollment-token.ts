import { createHash, randomBytes } from 'node:crypto';

/**
 * Enrollment token strings (api.md §Zero-touch enrollment): `lket.<tokenId>.<secret>`.
 * The token id (12 base64url characters) names the stored row; the secret (32 random bytes,
 * 43 base64url characters) is shown once and only its SHA-256 is stored.
 */
export const ENROLLMENT_TOKEN_PREFIX = 'lket';
const TOKEN_RE = /^lket\.([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{43})$/;

export interface MintedEnrollmentToken {
  tokenId: string;
  /** the full bearer string, shown to the admin once */
  token: string;
  secretHash: Buffer;
}

/**
 * Mints a new enrollment token.
 *
 * @example
 * ```ts
 * const { tokenId, token, secretHash } = mintEnrollmentToken(); // store tokenId + secretHash, show token
 * ```
 */
export function mintEnrollmentToken(): MintedEnrollmentToken {
  const tokenId = randomBytes(9).toString('base64url');
  const secret = randomBytes(32).toString('base64url');
  return { tokenId, token: `${ENROLLMENT_TOKEN_PREFIX}.${tokenId}.${secret}`, secretHash: hashSecret(secret) };
}

/** Splits a presented token into its id and the hash of its secret, or null if it is not one. */
export function readEnrollmentToken(token: string | null): { tokenId: string; secretHash: Buffer } | null {
  if (token === null) return null;
  const m = TOKEN_RE.exec(token);
  return m === null ? null : { tokenId: m[1]!, secretHash: hashSecret(m[2]!) };
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}
