/**
 * protocol.md §Signed messages: a device signs what it publishes with its own key, so that whoever
 * reads the message later (a consumer behind a broker it does not trust, a data lake) can check
 * that this device published these bytes on this topic, in this order. The rules live here once;
 * the broker's edge check and the SDK's consumer verifier both apply them.
 */
import { ProtocolError } from './errors.ts';
import { checkJoseHeader, decodeBase64url, decodeCompact, parseJsonObject, type DecodedCompact } from './internal/compact-jws.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { deviceOfPublishTopic } from './topics.ts';
import { verifySignatureP1363, type VerifiableCredential } from './verify-token.ts';

/**
 * The `typ` of a signed message (RFC 8725 §3.11 explicit typing): the media type
 * `application/latchkey-message+jwt`. Required, compared ignoring ASCII case. A connect token's
 * `typ` is `JWT` or absent, so neither verifier accepts the other's JWS.
 */
export const MESSAGE_TYP = 'latchkey-message+jwt';

/**
 * The `aud` of a signed message for a broker audience: `<audience>:message` (as an enrollment proof's
 * is `<audience>:enroll`), never the connect token's audience.
 *
 * @example
 * ```ts
 * messageAudience('latchkey') // 'latchkey:message'
 * ```
 */
export function messageAudience(audience: string): string {
  return `${audience}:message`;
}

/** The claims of a signed message. `iat` is seconds; `body` is the base64url of the published bytes. */
export interface MessageClaims {
  sub: string;
  aud: string;
  iat: number;
  topic: string;
  seq: number;
  body: string;
}

/**
 * A credential as a message verifier knows it: the key, and when it was registered and removed
 * (epoch ms; null or absent when unknown, i.e. unbounded). The broker knows only the current ones.
 */
export interface MessageCredential extends VerifiableCredential {
  createdAt?: number | null;
  removedAt?: number | null;
}

/** A signed message that verified. */
export interface VerifiedMessage {
  deviceId: string;
  topic: string;
  seq: number;
  /** seconds */
  iat: number;
  /** the credential whose key verified the signature */
  kid: string;
  /** the published bytes (the `body` claim, decoded) */
  payload: Buffer;
}

/** A signed message split and its header checked; nothing verified yet. */
export interface DecodedMessage {
  /** the device the topic names: the only one whose keys may have signed it */
  deviceId: string;
  kid: string | undefined;
  jws: DecodedCompact;
  /** the compact JWS as text */
  text: string;
}

/** Rules a message verifier applies besides the keys. */
export interface MessageRules {
  /** The broker audience; `aud` must be {@link messageAudience} of it. */
  readonly audience: string;
  /** Allowed clock skew for `iat`, seconds. */
  readonly clockTolerance: number;
}

/**
 * Steps 1–3: the size cap, the topic (a device → cloud topic, whose device's keys are the only
 * candidates), the compact JWS read strictly (`message_malformed`), and the header: `alg` ES256, the
 * allowlist, `typ` exactly {@link MESSAGE_TYP}, `kid` optional.
 *
 * @example
 * ```ts
 * const decoded = decodeSignedMessage(packet.payload, packet.topic);
 * ```
 */
export function decodeSignedMessage(message: string | Uint8Array, topic: string, maxBytes: number = DEFAULT_LIMITS.maxPacketSize): DecodedMessage {
  const length = typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength;
  if (length === 0) throw new ProtocolError('message_malformed', 'empty message');
  if (length > maxBytes) throw new ProtocolError('message_too_large', `message longer than ${maxBytes} bytes`);
  const deviceId = deviceOfPublishTopic(topic);
  if (deviceId === null) throw new ProtocolError('topic_mismatch', 'not a device → cloud topic');
  const text = typeof message === 'string' ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('latin1');
  const jws = decodeCompact(text, 'message_malformed');
  const { kid } = checkJoseHeader(jws.header, { expected: MESSAGE_TYP, required: true });
  return { deviceId, kid, jws, text };
}

/**
 * The credentials to try, in order: the one `kid` names (`unknown_credential` if the device never
 * had it), else every one, `preferKid` first (the broker's session key: one verify in the common
 * case). `null` (an unknown device) is `unknown_principal`.
 */
export function messageCandidates<C extends MessageCredential>(creds: readonly C[] | null, kid: string | undefined, preferKid?: string): readonly C[] {
  if (creds === null) throw new ProtocolError('unknown_principal', 'unknown device');
  if (kid !== undefined) {
    const named = creds.find((c) => c.kid === kid);
    if (named === undefined) throw new ProtocolError('unknown_credential', 'kid names no credential of this device');
    return [named];
  }
  if (creds.length === 0) throw new ProtocolError('unknown_credential', 'the device has no credentials');
  const preferred = preferKid === undefined ? -1 : creds.findIndex((c) => c.kid === preferKid);
  return preferred <= 0 ? creds : [creds[preferred]!, ...creds.slice(0, preferred), ...creds.slice(preferred + 1)];
}

/** RFC 7519 §2 NumericDate as protocol.md narrows it: a non-negative safe integer. */
const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function required(claims: Record<string, unknown>, name: keyof MessageClaims): unknown {
  const value = claims[name];
  if (value === undefined) throw new ProtocolError('claim_missing', `${name} is required`);
  return value;
}

/**
 * The claims of protocol.md §Signed messages, after the signature verified: shape (`sub`, `aud`,
 * `iat`, `topic`, `seq`, `body`; `claim_missing`, `claim_invalid`), then `aud` =
 * `<audience>:message`, `sub` = the topic's device, `topic` = the topic it arrived on, and `iat`
 * not later than now + tolerance. Other claims are ignored (RFC 7519 §4). Returns the claims and
 * the decoded body.
 *
 * @example
 * ```ts
 * const { claims, payload } = checkMessageClaims(json, { audience: 'latchkey', clockTolerance: 300 }, { deviceId, topic }, Date.now());
 * ```
 */
export function checkMessageClaims(
  claims: Record<string, unknown>,
  rules: MessageRules,
  expected: { deviceId: string; topic: string },
  nowMs: number,
): { claims: MessageClaims; payload: Buffer } {
  const sub = required(claims, 'sub');
  const aud = required(claims, 'aud');
  const iat = required(claims, 'iat');
  const topic = required(claims, 'topic');
  const seq = required(claims, 'seq');
  const body = required(claims, 'body');
  if (typeof sub !== 'string' || typeof aud !== 'string' || typeof topic !== 'string' || typeof body !== 'string') {
    throw new ProtocolError('claim_invalid', 'sub, aud, topic and body must be strings');
  }
  if (!isNumericDate(iat)) throw new ProtocolError('claim_invalid', 'iat must be an integer NumericDate');
  if (!isNumericDate(seq)) throw new ProtocolError('claim_invalid', 'seq must be a non-negative integer below 2^53');
  const payload = decodeBase64url(body, 'body', 'claim_invalid');
  if (aud !== messageAudience(rules.audience)) throw new ProtocolError('audience_mismatch', 'aud is not this fleet\'s message audience');
  if (sub !== expected.deviceId) throw new ProtocolError('subject_mismatch', 'sub is not the device the topic names');
  if (topic !== expected.topic) throw new ProtocolError('topic_mismatch', 'signed for another topic');
  if (iat * 1000 > nowMs + rules.clockTolerance * 1000) throw new ProtocolError('message_issued_in_future', 'iat is in the future');
  return { claims: { sub, aud, iat, topic, seq, body }, payload };
}

/**
 * Was `cred` registered during the second `iat` names? The second [iat, iat + 1) must overlap
 * [createdAt, removedAt) and start before `expiresAt`: a message dated before its key was registered
 * is `credential_not_yet_valid`, one dated at or after its removal `credential_removed`, after its
 * expiry `credential_expired`.
 *
 * @example
 * ```ts
 * checkCredentialAt({ kid, key, createdAt: 1_700_000_000_000, removedAt: null, expiresAt: null }, claims.iat);
 * ```
 */
export function checkCredentialAt(cred: MessageCredential, iat: number): void {
  const startMs = iat * 1000;
  if (cred.createdAt != null && startMs + 1000 <= cred.createdAt) {
    throw new ProtocolError('credential_not_yet_valid', 'signed before its key was registered');
  }
  if (cred.removedAt != null && startMs >= cred.removedAt) throw new ProtocolError('credential_removed', 'signed after its key was removed');
  if (cred.expiresAt !== null && startMs >= cred.expiresAt) throw new ProtocolError('credential_expired', 'signed after its key expired');
}

/** Options of {@link verifySignedMessage}. */
export interface VerifySignedMessageOptions extends MessageRules {
  /** the topic the message arrived on */
  topic: string;
  /** epoch ms */
  now: number;
  /** The device's credentials (with their history, when known), or null for an unknown device. Synchronous by design. */
  resolveCredentials: (deviceId: string) => readonly MessageCredential[] | null;
  /** Without a `kid`, try this credential first (the broker passes its session's). */
  preferKid?: string;
  /** Longest message, bytes. Default the broker's default maxPacketSize. */
  maxBytes?: number;
}

/**
 * Verifies a signed message in the order of protocol.md §Signed messages: size → topic → strict
 * compact JWS → header → candidate keys → ES256 signature (P1363, one verify when `kid` or
 * `preferKid` names the key) → claims → the key's validity at `iat`. Synchronous, with
 * `crypto.verify`: the broker's edge check. Replay (the sequence window) is the consumer's.
 *
 * @example
 * ```ts
 * const m = verifySignedMessage(packet.payload, { topic: packet.topic, audience: 'latchkey', clockTolerance: 300,
 *   now: Date.now(), resolveCredentials: (id) => cache.get(id)?.credentials ?? null });
 * ```
 */
export function verifySignedMessage(message: string | Uint8Array, o: VerifySignedMessageOptions): VerifiedMessage {
  const decoded = decodeSignedMessage(message, o.topic, o.maxBytes);
  const candidates = messageCandidates(o.resolveCredentials(decoded.deviceId), decoded.kid, o.preferKid);
  const { signingInput, signature, payload: claimBytes } = decoded.jws;
  const signer = candidates.find((c) => verifySignatureP1363(c.key, signingInput, signature));
  if (signer === undefined) throw new ProtocolError('signature_invalid', 'signature does not verify');
  const { claims, payload } = checkMessageClaims(parseJsonObject(claimBytes, 'claims', 'message_malformed'), o, { deviceId: decoded.deviceId, topic: o.topic }, o.now);
  checkCredentialAt(signer, claims.iat);
  return { deviceId: decoded.deviceId, topic: o.topic, seq: claims.seq, iat: claims.iat, kid: signer.kid, payload };
}
