import type { KeyObject } from 'node:crypto';
import {
  decodeSegments,
  enrollAudience,
  isProtocolError,
  MAX_ENROLL_PROOF_LIFETIME,
  verifyToken,
  type ProtocolErrorCode,
} from '@latchkey/device-sdk/protocol';

export interface ProofCheck {
  /** the key being enrolled: the proof must be signed by it, and by nothing the token names */
  key: KeyObject;
  deviceId: string;
  /** broker audience; the proof's `aud` is `<audience>:enroll` */
  audience: string;
  clockTolerance: number;
  now: number;
}

/**
 * api.md §Zero-touch enrollment: the proof is an ES256 JWT signed by the new key, with
 * `sub` = deviceId, `aud` = `<audience>:enroll`, `iat`, `exp` and `exp − iat` ≤ 5 minutes. It is
 * checked by the protocol core's token pipeline (strict base64url, header rules, P1363
 * signature, claims) against the submitted key only: no header (`jwk`, `x5c`, …) can choose
 * the key. Returns null when valid, else the internal reason.
 *
 * @example
 * ```ts
 * const reason = checkEnrollmentProof(proof, { key: parsed.key, deviceId, audience: 'latchkey', clockTolerance: 300, now: Date.now() });
 * ```
 */
export function checkEnrollmentProof(proof: string, c: ProofCheck): ProtocolErrorCode | null {
  try {
    // A `kid` in the proof header is allowed; it names the one key being enrolled.
    const kid = decodeSegments(proof).header.kid;
    verifyToken(proof, {
      audience: enrollAudience(c.audience),
      maxTokenLifetime: MAX_ENROLL_PROOF_LIFETIME,
      clockTolerance: c.clockTolerance,
      requireJti: false,
      now: c.now,
      principal: c.deviceId,
      resolveCredentials: () => [{ kid: typeof kid === 'string' ? kid : 'enrolling-key', key: c.key, expiresAt: null }],
    });
    return null;
  } catch (e) {
    if (isProtocolError(e)) return e.code;
    return 'internal_error';
  }
}
