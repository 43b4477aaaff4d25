import { ProtocolError } from './errors.ts';
import { MAX_AUDIENCE_LENGTH, MAX_JTI_LENGTH, type TokenRules } from './limits.ts';
import { LATCHKEY_DIALECT, type TokenDialect } from './token-dialect.ts';

/** The claims of a verified connect token (protocol.md §The connect token, Claims). Dates are seconds. */
export interface TokenClaims {
  /** always present in a native token; a Cloud IoT Core token may leave it out (protocol.md §Cloud IoT Core tokens) */
  sub?: string;
  aud: string | string[];
  iat: number;
  exp: number;
  nbf?: number;
  jti?: string;
}

const MAX_SUB_LENGTH = 256;

/**
 * An audience: the broker's configured `audience`, and what a token is minted for. A non-empty
 * string of at most {@link MAX_AUDIENCE_LENGTH} characters. (A token's `aud` claim is only compared
 * with the broker's audience.)
 *
 * @example
 * ```ts
 * isAudience('latchkey') // true; isAudience('') // false
 * ```
 */
export function isAudience(audience: unknown): audience is string {
  return typeof audience === 'string' && audience.length > 0 && audience.length <= MAX_AUDIENCE_LENGTH;
}

/** A `jti`: a non-empty string of at most {@link MAX_JTI_LENGTH} characters. */
export function isJti(jti: unknown): jti is string {
  return typeof jti === 'string' && jti.length > 0 && jti.length <= MAX_JTI_LENGTH;
}

/** RFC 7519 §2 NumericDate, narrowed by protocol.md: a finite integer (`1e999`, `1.5`, `"1700000000"` fail). */
function numericDate(payload: Record<string, unknown>, name: 'iat' | 'exp' | 'nbf', required: boolean): number | undefined {
  const value = payload[name];
  if (value === undefined) {
    if (required) throw new ProtocolError('claim_missing', `${name} is required`);
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError('claim_invalid', `${name} must be an integer NumericDate`);
  }
  return value;
}

function audienceOk(aud: unknown, expected: string, form: TokenDialect['audience']): aud is string | string[] {
  if (typeof aud === 'string') return aud === expected;
  if (form === 'string') throw new ProtocolError('claim_invalid', 'aud must be a single string');
  if (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string')) return aud.includes(expected);
  throw new ProtocolError('claim_invalid', 'aud must be a string or an array of strings');
}

/**
 * The claim rules of protocol.md (or, with `dialect`, of §Cloud IoT Core tokens), checked after the
 * signature verified, in this order: shape (`sub`, `aud`, `iat`, `exp`, `nbf`, `jti`), audience,
 * lifetime, then time against `nowMs` with the clock tolerance. The subject binding (sub = client
 * principal) is a separate step.
 *
 * @example
 * ```ts
 * const claims = checkClaims(JSON.parse(payload), DEFAULT_TOKEN_RULES, Date.now());
 * ```
 */
export function checkClaims(payload: Record<string, unknown>, rules: TokenRules, nowMs: number, dialect: TokenDialect = LATCHKEY_DIALECT): TokenClaims {
  const { sub, aud, jti } = payload;
  if (sub === undefined && dialect.subject === 'required') throw new ProtocolError('claim_missing', 'sub is required');
  if (sub !== undefined && (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_LENGTH)) {
    throw new ProtocolError('claim_invalid', 'sub must be a non-empty string');
  }
  if (aud === undefined) throw new ProtocolError('claim_missing', 'aud is required');
  const iat = numericDate(payload, 'iat', true)!;
  const exp = numericDate(payload, 'exp', true)!;
  const nbf = numericDate(payload, 'nbf', false);
  if (jti !== undefined && !isJti(jti)) {
    throw new ProtocolError('claim_invalid', 'jti must be a non-empty string');
  }
  if (rules.requireJti && jti === undefined) throw new ProtocolError('jti_missing', 'jti is required');
  if (!audienceOk(aud, rules.audience, dialect.audience)) throw new ProtocolError('audience_mismatch', 'aud does not name this broker');

  // exp − iat ≤ max token lifetime and > 0
  const lifetime = exp - iat;
  if (lifetime <= 0 || lifetime > rules.maxTokenLifetime) {
    throw new ProtocolError('lifetime_exceeded', `exp - iat must be within 1..${rules.maxTokenLifetime} s`);
  }
  const toleranceMs = rules.clockTolerance * 1000;
  // iat not later than now + tolerance
  if (iat * 1000 > nowMs + toleranceMs) throw new ProtocolError('token_issued_in_future', 'iat is in the future');
  // exp later than now − tolerance
  if (exp * 1000 <= nowMs - toleranceMs) throw new ProtocolError('token_expired', 'token expired');
  // nbf honoured with the same tolerance
  if (nbf !== undefined && nbf * 1000 > nowMs + toleranceMs) {
    throw new ProtocolError('token_not_yet_valid', 'token not valid yet (nbf)');
  }
  const claims: TokenClaims = { aud, iat, exp };
  if (sub !== undefined) claims.sub = sub;
  if (nbf !== undefined) claims.nbf = nbf;
  if (typeof jti === 'string') claims.jti = jti;
  return claims;
}
