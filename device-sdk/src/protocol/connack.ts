import type { AuthFailureCode } from './errors.ts';

/** MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3]. */
export const CONNACK = Object.freeze({
  accepted: 0,
  unacceptableProtocolVersion: 1,
  identifierRejected: 2,
  serverUnavailable: 3,
  badUsernameOrPassword: 4,
  notAuthorized: 5,
});

export type RefusalCode = 2 | 3 | 4 | 5;

/**
 * protocol.md §MQTT CONNECT: the one table from internal reason to CONNACK code.
 * Unknown device and bad signature are both 4, so a client cannot tell them apart.
 * A new code does not compile until it is placed here.
 */
export const CONNACK_FOR = {
  client_id_invalid: 2,
  token_missing: 4,
  token_too_large: 4,
  token_malformed: 4,
  alg_not_allowed: 4,
  alg_key_mismatch: 4,
  header_forbidden: 4,
  header_invalid: 4,
  unknown_principal: 4,
  unknown_credential: 4,
  credential_expired: 4,
  signature_invalid: 4,
  claim_missing: 4,
  claim_invalid: 4,
  token_expired: 4,
  token_not_yet_valid: 4,
  token_issued_in_future: 4,
  lifetime_exceeded: 4,
  audience_mismatch: 4,
  subject_mismatch: 4,
  jti_missing: 4,
  jti_replayed: 4,
  project_not_enabled: 2,
  binding_mismatch: 4,
  principal_blocked: 5,
  throttled: 5,
  will_not_allowed: 5,
  auth_timeout: 3,
  service_unavailable: 3,
  internal_error: 3,
} as const satisfies Record<AuthFailureCode, RefusalCode>;

/** The CONNACK return code for an internal refusal reason. */
export function connackFor(code: AuthFailureCode): RefusalCode {
  return CONNACK_FOR[code];
}
