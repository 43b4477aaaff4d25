/**
 * The error base of every layer, and the wire contract's own error class. Each layer has one class
 * extending {@link CodedError} with a stable string `code` from its own union (ProtocolError here,
 * DeviceClientError and DeviceKeyError in the SDK, RegistryError, ApiError, CliError). Tests assert
 * `code`, never message text. Transports map codes to wire results through exhaustive tables
 * (`connack.ts`, provisioning's HTTP status table).
 */
import { CodedError, isCodedError } from './coded-error.ts';

/** Codes for identifiers (protocol.md §Device ids, §Service accounts). */
export const ID_ERROR_CODES = ['invalid_device_id', 'invalid_service_name'] as const;

/** Codes for public keys (protocol.md §Keys). */
export const KEY_ERROR_CODES = [
  'invalid_public_key', // malformed PEM/JWK/certificate, off-curve point, bad encoding
  'private_key_rejected', // a private key (PEM, or JWK carrying `d`) was sent
  'unsupported_key_type', // RSA (outside Cloud IoT Core compatibility), Ed25519, X25519, DSA, ...
  'unsupported_curve', // EC, but not P-256 (P-384, secp256k1, explicit parameters, ...)
  'key_too_small', // an RSA key under 2048 bits (protocol.md §RSA keys)
  'certificate_expired', // an X.509 certificate whose notAfter has passed
] as const;

/**
 * Internal reasons a CONNECT is refused (protocol.md §MQTT CONNECT, §The connect token).
 * Never sent to a client; recorded in device status, the audit log and metrics.
 */
export const AUTH_FAILURE_CODES = [
  'client_id_invalid',
  'token_missing',
  'token_too_large',
  'token_malformed',
  'alg_not_allowed',
  'alg_key_mismatch', // protocol.md §Cloud IoT Core tokens: no credential of the device has the key type `alg` needs (RS256 vs EC, ES256 vs RSA)
  'header_forbidden',
  'header_invalid',
  'unknown_principal',
  'unknown_credential',
  'credential_expired',
  'signature_invalid',
  'claim_missing',
  'claim_invalid',
  'token_expired',
  'token_not_yet_valid',
  'token_issued_in_future',
  'lifetime_exceeded',
  'audience_mismatch',
  'subject_mismatch',
  'jti_missing',
  'jti_replayed',
  'project_not_enabled', // protocol.md §Cloud IoT Core client ids: the path client id names a project not enabled by --gcp-project
  'binding_mismatch', // protocol.md §Cloud IoT Core client ids: the device has no Cloud IoT Core binding, or another project, location or registry
  'principal_blocked',
  'throttled',
  'will_not_allowed',
  'auth_timeout',
  'service_unavailable',
  'internal_error',
] as const;

/**
 * Why a signed message is refused (protocol.md §Signed messages), by the broker's edge check and by
 * consumers. Several are the connect token's codes, for the same rule broken the same way.
 */
export const MESSAGE_FAILURE_CODES = [
  'message_malformed', // not a compact JWS of canonical base64url; header or claims not a UTF-8 JSON object
  'message_too_large', // longer than the verifier's cap (the broker's maxPacketSize)
  'alg_not_allowed',
  'header_forbidden',
  'header_invalid', // typ is not latchkey-message+jwt (a connect token is not a message), or a bad kid
  'unknown_principal', // the topic's device is not registered
  'unknown_credential', // kid names no credential the device ever had, or it has none
  'signature_invalid',
  'claim_missing',
  'claim_invalid',
  'audience_mismatch', // aud is not <audience>:message
  'subject_mismatch', // sub is not the device the topic names
  'topic_mismatch', // signed for another topic, or the topic is not a device → cloud topic
  'message_issued_in_future', // iat > now + clock tolerance
  'credential_not_yet_valid', // signed before its key was registered
  'credential_removed', // signed after its key was removed
  'credential_expired', // signed after its key expired
  'message_replayed', // seq already seen for the device, or below its replay window
] as const;

export type IdErrorCode = (typeof ID_ERROR_CODES)[number];
export type KeyErrorCode = (typeof KEY_ERROR_CODES)[number];
export type AuthFailureCode = (typeof AUTH_FAILURE_CODES)[number];
export type MessageFailureCode = (typeof MESSAGE_FAILURE_CODES)[number];
export type ProtocolErrorCode = IdErrorCode | KeyErrorCode | AuthFailureCode | MessageFailureCode;

export const PROTOCOL_ERROR_CODES: readonly ProtocolErrorCode[] = [
  ...new Set<ProtocolErrorCode>([...ID_ERROR_CODES, ...KEY_ERROR_CODES, ...AUTH_FAILURE_CODES, ...MESSAGE_FAILURE_CODES]),
];

/**
 * A rule of the wire contract was broken.
 *
 * @example
 * ```ts
 * try { assertDeviceId(input) } catch (e) { if (isProtocolError(e, 'invalid_device_id')) ... }
 * ```
 */
export class ProtocolError<C extends ProtocolErrorCode = ProtocolErrorCode> extends CodedError<C> {
  override readonly name = 'ProtocolError';
}

/** Type guard: `e` is a ProtocolError, optionally with one of the given codes. */
export function isProtocolError<C extends ProtocolErrorCode>(e: unknown, ...codes: C[]): e is ProtocolError<C> {
  return isCodedError(e, ProtocolError, codes);
}
