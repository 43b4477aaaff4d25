import type { SignatureAlgorithm } from './public-key.ts';

/**
 * How one family of clients writes its connect tokens: the few rules in which Cloud IoT Core
 * firmware (protocol.md §Cloud IoT Core tokens) differs from native devices (protocol.md §The connect token).
 * Every other step — size cap, strict base64url, the header allowlist, credential lookup, the
 * signature, the time rules — is the same verifier's, for both.
 */
export interface TokenDialect {
  readonly name: 'latchkey' | 'gcp';
  /** The `alg` values the header may carry; each verifies only with its own key type (ES256: P-256, RS256: RSA). */
  readonly algorithms: readonly SignatureAlgorithm[];
  /** `sub`: `required` and equal to the principal, or `optional` and equal to the device id when present. */
  readonly subject: 'required' | 'optional';
  /** `aud`: a string or an array of strings containing the audience, or exactly one string equal to it. */
  readonly audience: 'string-or-array' | 'string';
}

/** protocol.md §The connect token: ES256, `sub` = the principal, `aud` a string or an array containing it. */
export const LATCHKEY_DIALECT: TokenDialect = Object.freeze({
  name: 'latchkey',
  algorithms: Object.freeze(['ES256'] as const),
  subject: 'required',
  audience: 'string-or-array',
});

/**
 * protocol.md §Cloud IoT Core tokens: RS256 or ES256 (bound to the credential's key type), `sub` absent or the
 * device id, `aud` one string: the project of the client id.
 */
export const GCP_DIALECT: TokenDialect = Object.freeze({
  name: 'gcp',
  algorithms: Object.freeze(['RS256', 'ES256'] as const),
  subject: 'optional',
  audience: 'string',
});
