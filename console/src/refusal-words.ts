import type { AuthFailureCode } from '@latchkey/device-sdk/protocol';

/**
 * Why a device's connection was refused, in plain words for operators, for every internal
 * reason of the protocol core (docs/errors.md §MQTT CONNECT refusals has the fixes). Keyed by
 * the AuthFailureCode union: a new code does not compile until it has its words here.
 */
export const REFUSAL_WORDS = {
  client_id_invalid: 'client id is not a valid device id',
  token_missing: 'no token was sent',
  token_too_large: 'token is too large',
  token_malformed: 'token is not a well-formed JWT',
  alg_not_allowed: 'token is not signed with ES256 (RS256 or ES256 for Cloud IoT Core firmware)',
  alg_key_mismatch: "token's algorithm does not fit the device's key type (RS256 needs RSA, ES256 P-256)",
  header_forbidden: 'token header carries a forbidden field (jwk, x5c, …)',
  header_invalid: 'token header is invalid (typ or kid)',
  unknown_principal: 'no device is registered with this id',
  unknown_credential: 'token names a key (kid) this device does not have',
  credential_expired: "the device's key has expired",
  signature_invalid: 'signature does not match any registered key',
  claim_missing: 'token lacks a required claim (sub, aud, iat or exp)',
  claim_invalid: 'a token claim has a wrong type',
  token_expired: 'token expired',
  token_not_yet_valid: 'token is not valid yet (device clock ahead?)',
  token_issued_in_future: 'token issued in the future (device clock ahead?)',
  lifetime_exceeded: 'token lifetime is longer than allowed',
  audience_mismatch: "token audience is not this broker's",
  subject_mismatch: 'token subject is not the client id',
  jti_missing: 'token has no jti, and this broker requires one',
  jti_replayed: 'token was already used (jti replayed)',
  project_not_enabled: 'Cloud IoT Core client id names a project this broker does not serve',
  binding_mismatch: 'Cloud IoT Core client id names another project, location or registry than the device was imported with',
  principal_blocked: 'device is blocked',
  throttled: 'too many refused connects from its address (throttled)',
  will_not_allowed: "will topic is outside the device's topics",
  auth_timeout: 'authentication did not finish in time',
  internal_error: 'internal error while checking the token',
  service_unavailable: 'the broker node could not reach its shared store (Redis) and refused new connects',
} as const satisfies Record<AuthFailureCode, string>;

/** The words for a stored reason; a code this version does not know is shown as it is. */
export function refusalWords(code: string): string {
  return Object.hasOwn(REFUSAL_WORDS, code) ? REFUSAL_WORDS[code as AuthFailureCode] : `refused (${code})`;
}
