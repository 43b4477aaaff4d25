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
  MESSAGE_FAILURE_CODES,
} from './errors.ts';
export type { ProtocolErrorCode, IdErrorCode, KeyErrorCode, AuthFailureCode, MessageFailureCode } from './errors.ts';
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
  MAX_GCP_CLIENT_ID_LENGTH,
  MIN_RSA_BITS,
  MAX_RSA_BITS,
  MAX_API_TOKEN_LIFETIME,
  enrollAudience,
  apiAudience,
} from './limits.ts';
export type { Clock, TokenRules } from './limits.ts';
export { CONNACK, CONNACK_FOR, connackFor } from './connack.ts';
export type { RefusalCode } from './connack.ts';
export { parsePublicKey, publicKeyFromSpkiDer } from './public-key.ts';
export type { ParsedPublicKey, PublicKeyFormat, ParsePublicKeyOptions, KeyType, SignatureAlgorithm } from './public-key.ts';
export { fingerprintOf, canonicalSpkiDer } from './fingerprint.ts';
export { decodeSegments, checkHeader, checkTokenSize, isKid } from './token-header.ts';
export type { DecodedToken, TokenHeader } from './token-header.ts';
export { checkClaims, isAudience, isJti } from './claims.ts';
export type { TokenClaims } from './claims.ts';
export {
  verifyToken,
  prepareTokenVerification,
  completeTokenVerification,
  findSigner,
  signatureInvalid,
  signatureFits,
  SIGNATURE_VERIFY_PARAMS,
  verifySignature,
  verifySignatureP1363,
  verifySignatureRs256,
  algorithmOfKey,
} from './verify-token.ts';
export { LATCHKEY_DIALECT, GCP_DIALECT } from './token-dialect.ts';
export type { TokenDialect } from './token-dialect.ts';
export {
  parseGcpClientId,
  gcpClientId,
  gcpTokenRules,
  isGcpProject,
  isGcpLocation,
  isGcpRegistry,
  isGcpNumId,
  GCP_PROJECT_PATTERN,
  GCP_LOCATION_PATTERN,
  GCP_REGISTRY_PATTERN,
  GCP_NUM_ID_PATTERN,
  DEFAULT_GCP_TOKEN_RULES,
} from './gcp-client-id.ts';
export type { GcpClientId } from './gcp-client-id.ts';
export { isProxyRange, PROXY_RANGES, PROXY_RANGE_NAMES, PROXY_RANGE_RULE } from './internal/proxy-ranges.ts';
export type { PreparedToken, VerifiableCredential, VerifyTokenOptions, VerifiedToken } from './verify-token.ts';
export {
  MESSAGE_TYP,
  messageAudience,
  decodeSignedMessage,
  messageCandidates,
  checkMessageClaims,
  checkCredentialAt,
  verifySignedMessage,
} from './signed-message.ts';
export type {
  MessageClaims,
  MessageCredential,
  MessageRules,
  DecodedMessage,
  VerifiedMessage,
  VerifySignedMessageOptions,
} from './signed-message.ts';
export {
  deviceTopics,
  configMessage,
  topicMatches,
  filterWithin,
  isValidTopicName,
  isValidTopicFilter,
  canPublish,
  canSubscribe,
  canReceive,
  gcpDeviceTopics,
  toNativeTopic,
  toGcpTopic,
  deviceOfPublishTopic,
  filtersOverlap,
} from './topics.ts';
export type { TopicPrincipal, TopicAcl } from './topics.ts';
