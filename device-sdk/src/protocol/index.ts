/**
 * `@latchkey/device-sdk/protocol` — the wire contract (docs/protocol.md) as code.
 * Pure: every function takes `now` (or a Clock) and depends only on jose and node:crypto.
 * Broker and provisioning import the rules from here, so each rule exists exactly once.
 */
export { CodedError, isCodedError } from './coded-error.ts';
export {
  ProtocolError,
  isProtocolError,
  PROTOCOL_ERROR_CODES,
  ID_ERROR_CODES,
  KEY_ERROR_CODES,
  AUTH_FAILURE_CODES,
} from './errors.ts';
export type { ProtocolErrorCode, IdErrorCode, KeyErrorCode, AuthFailureCode } from './errors.ts';
export {
  DEVICE_ID_PATTERN,
  SERVICE_NAME_PATTERN,
  SERVICE_INSTANCE_PATTERN,
  SERVICE_PREFIX,
  isDeviceId,
  isServiceName,
  isServiceInstance,
  isPrincipal,
  assertDeviceId,
  assertServiceName,
  parseClientId,
  parsePrincipal,
  servicePrincipal,
  serviceClientId,
} from './ids.ts';
export type { ClientIdentity } from './ids.ts';
export {
  systemClock,
  DEFAULT_TOKEN_RULES,
  DEFAULT_LIMITS,
  MAX_TOKEN_BYTES,
  MAX_KID_LENGTH,
  MAX_AUDIENCE_LENGTH,
  MAX_JTI_LENGTH,
  MAX_CLIENT_ID_LENGTH,
  MAX_MQTT_PACKET_SIZE,
  MIN_PACKET_SIZE,
  MAX_CREDENTIALS,
  MAX_ENROLL_PROOF_LIFETIME,
  enrollAudience,
} from './limits.ts';
export type { Clock, TokenRules } from './limits.ts';
export { CONNACK, CONNACK_FOR, connackFor } from './connack.ts';
export type { RefusalCode } from './connack.ts';
export { parsePublicKey, publicKeyFromSpkiDer } from './public-key.ts';
export type { ParsedPublicKey, PublicKeyFormat } from './public-key.ts';
export { fingerprintOf, canonicalSpkiDer } from './fingerprint.ts';
export { decodeSegments, checkHeader, checkTokenSize, isKid } from './token-header.ts';
export type { DecodedToken, TokenHeader } from './token-header.ts';
export { checkClaims, isAudience, isJti } from './claims.ts';
export type { TokenClaims } from './claims.ts';
export { verifyToken, verifySignatureP1363 } from './verify-token.ts';
export { isProxyRange, PROXY_RANGES, PROXY_RANGE_NAMES, PROXY_RANGE_RULE } from './internal/proxy-ranges.ts';
export type { VerifiableCredential, VerifyTokenOptions, VerifiedToken } from './verify-token.ts';
export {
  deviceTopics,
  configMessage,
  topicMatches,
  filterWithin,
  isValidTopicName,
  isValidTopicFilter,
  canPublish,
  canSubscribe,
} from './topics.ts';
export type { TopicPrincipal, TopicAcl } from './topics.ts';
