import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { checkClaims, type TokenClaims } from './claims.ts';
import { ProtocolError } from './errors.ts';
import type { TokenRules } from './limits.ts';
import { checkHeader, decodeSegments, parseJsonObject, type DecodedToken, type TokenHeader } from './token-header.ts';

/** A registered credential, ready to verify with (a long-lived KeyObject, never re-imported per connect). */
export interface VerifiableCredential {
  kid: string;
  key: KeyObject;
  /** epoch ms; null for no expiry */
  expiresAt: number | null;
}

export interface VerifyTokenOptions extends TokenRules {
  /** epoch ms */
  now: number;
  /** The principal the client id names (device id or `svc:{name}`); the token's `sub` must equal it. */
  principal: string;
  /** The principal's credentials, or null when the principal is unknown. Synchronous by design. */
  resolveCredentials: (principal: string) => readonly VerifiableCredential[] | null;
  /** Records a `jti` as used; returns false when it was seen before within its lifetime. */
  checkJti?: (principal: string, jti: string, expMs: number) => boolean;
}

export interface VerifiedToken extends TokenClaims {
  /** the credential that verified the signature */
  kid: string;
  /** exp in epoch ms */
  expiresAtMs: number;
}

/** RFC 7518 §3.4: ES256 signatures are the 64-byte r‖s; anything else (DER, wrong length) fails. */
export function verifySignatureP1363(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.byteLength !== 64) return false;
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/** Credentials to try: the one `kid` names, else every unexpired one (protocol.md §The connect token). */
function selectCredentials(creds: readonly VerifiableCredential[] | null, header: TokenHeader, now: number): readonly VerifiableCredential[] {
  if (creds === null) throw new ProtocolError('unknown_principal', 'unknown device or service account');
  const live = (c: VerifiableCredential) => c.expiresAt === null || c.expiresAt > now;
  if (header.kid !== undefined) {
    const named = creds.find((c) => c.kid === header.kid);
    if (named === undefined) throw new ProtocolError('unknown_credential', 'kid names no credential of this principal');
    if (!live(named)) throw new ProtocolError('credential_expired', 'the credential kid names has expired');
    return [named];
  }
  const usable = creds.filter(live);
  if (usable.length === 0) {
    throw creds.length === 0
      ? new ProtocolError('unknown_credential', 'principal has no credentials')
      : new ProtocolError('credential_expired', 'every credential of this principal has expired');
  }
  return usable;
}

/** Verifies the signature against the candidates; returns the kid that verified. */
function findSigner(decoded: DecodedToken, candidates: readonly VerifiableCredential[]): string {
  for (const c of candidates) {
    if (verifySignatureP1363(c.key, decoded.signingInput, decoded.signature)) return c.kid;
  }
  throw new ProtocolError('signature_invalid', 'signature does not verify');
}

/**
 * Verifies a connect token for the principal a client id names, in the order of protocol.md:
 * size cap → strict base64url → header → credential lookup (by `kid`, or every unexpired key) →
 * ES256 signature in P1363 form → claims → subject binding → single-use `jti`.
 * Synchronous; throws a {@link ProtocolError} whose code is the internal reason.
 * Blocking is not checked here: a valid token for a blocked device is the broker's CONNACK 5.
 *
 * @example
 * ```ts
 * const v = verifyToken(password, { ...DEFAULT_TOKEN_RULES, now: Date.now(), principal: 'thermo-1',
 *   resolveCredentials: (p) => cache.get(p) ?? null });
 * ```
 */
export function verifyToken(token: string | Uint8Array, opts: VerifyTokenOptions): VerifiedToken {
  const decoded = decodeSegments(token);
  const header = checkHeader(decoded.header);
  const candidates = selectCredentials(opts.resolveCredentials(opts.principal), header, opts.now);
  const kid = findSigner(decoded, candidates);
  const claims = checkClaims(parseJsonObject(decoded.payload, 'payload'), opts, opts.now);
  // protocol.md §MQTT CONNECT: client id MUST equal the token's sub.
  if (claims.sub !== opts.principal) throw new ProtocolError('subject_mismatch', 'sub does not match the client id');
  const expiresAtMs = claims.exp * 1000;
  if (claims.jti !== undefined && opts.checkJti !== undefined && !opts.checkJti(opts.principal, claims.jti, expiresAtMs)) {
    throw new ProtocolError('jti_replayed', 'jti was already used');
  }
  return { ...claims, kid, expiresAtMs };
}
