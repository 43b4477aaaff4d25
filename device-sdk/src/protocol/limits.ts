/**
 * Defaults and hard limits of the wire contract (protocol.md §Limits, §The connect token, §Keys).
 * Times in configuration are seconds, as in docs/configuration.md; a Clock returns epoch milliseconds.
 */

/** Returns the current time in epoch milliseconds (like `Date.now`). Injected wherever time matters. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();

/** Token rules a verifier applies (protocol.md §The connect token). */
export interface TokenRules {
  /** Expected `aud`. */
  readonly audience: string;
  /** Largest allowed `exp − iat`, seconds. */
  readonly maxTokenLifetime: number;
  /** Allowed clock skew for `iat`, `exp`, `nbf`, seconds. */
  readonly clockTolerance: number;
  /** Require a single-use `jti`. */
  readonly requireJti: boolean;
}

export const DEFAULT_TOKEN_RULES: TokenRules = Object.freeze({
  audience: 'latchkey',
  maxTokenLifetime: 86_400,
  clockTolerance: 300,
  requireJti: false,
});

/** A token longer than this many bytes is refused before it is parsed. */
export const MAX_TOKEN_BYTES = 4096;

/**
 * The longest `kid` a connect token's header may carry, in characters. The verifier refuses a longer
 * one as `header_invalid`, so token minting (SDK and CLI) refuses it too.
 */
export const MAX_KID_LENGTH = 128;

/** The broker's audience, and every audience a token is minted for: 1 to this many characters. */
export const MAX_AUDIENCE_LENGTH = 256;

/** A `jti`: 1 to this many characters. */
export const MAX_JTI_LENGTH = 256;

/** A client id longer than this is refused (CONNACK 2); the longest valid one, `svc:{name}:{instance}`, has 133. */
export const MAX_CLIENT_ID_LENGTH = 200;

/** The largest packet MQTT can frame: a type byte, 4 remaining-length bytes and 268,435,455 more [MQTT-2.2.3]. */
export const MAX_MQTT_PACKET_SIZE = 1 + 4 + 268_435_455;

/**
 * The smallest `maxPacketSize` a broker may be configured with. A CONNECT must fit a token of
 * {@link MAX_TOKEN_BYTES} with the longest client id, a username as long and a will message; twice the
 * token cap leaves room for them all (4,515 bytes without the will). A smaller limit would close the
 * CONNECT of a valid device before its token is read.
 */
export const MIN_PACKET_SIZE = 2 * MAX_TOKEN_BYTES;

/**
 * The longest client id a broker in Cloud IoT Core compatibility mode reads (protocol.md §Cloud IoT Core client ids):
 * `projects/{project}/locations/{location}/registries/{registry}/devices/{device}` with a 30-character
 * project, a 63-character location, a 255-character registry and a 64-character device id is 453.
 */
export const MAX_GCP_CLIENT_ID_LENGTH = 512;

/** protocol.md §RSA keys: RSA keys have at least this many bits. */
export const MIN_RSA_BITS = 2048;

/** The largest RSA modulus accepted, in bits: one RS256 verification stays well under a millisecond. */
export const MAX_RSA_BITS = 8192;

/** A device (or service account) holds at most this many credentials at once. */
export const MAX_CREDENTIALS = 3;

/** Enrollment proofs (api.md §Zero-touch enrollment): `exp − iat` at most 5 minutes. */
export const MAX_ENROLL_PROOF_LIFETIME = 300;

/** The audience of an enrollment proof for a broker audience. */
export function enrollAudience(audience: string): string {
  return `${audience}:enroll`;
}

/** Service-account API tokens (protocol.md §Service-account API tokens): `exp − iat` at most 5 minutes. */
export const MAX_API_TOKEN_LIFETIME = 300;

/**
 * The audience of a service account's API token for a broker audience: `<audience>:api`, so a
 * connect token (which the broker sees) is never accepted by the API, nor an API token at CONNECT.
 */
export function apiAudience(audience: string): string {
  return `${audience}:api`;
}

/** protocol.md §Limits and docs/configuration.md defaults. */
export const DEFAULT_LIMITS = Object.freeze({
  /** seconds from TCP connect to CONNECT */
  connectTimeout: 10,
  /** bytes, largest MQTT packet */
  maxPacketSize: 262_144,
  /** QoS 1 messages queued for an offline persistent session */
  maxQueuedMessages: 1000,
  /** refused connects per source address per window (0 = off) */
  authFailureLimit: 60,
  /** the throttling window, ms */
  authFailureWindowMs: 60_000,
});
