import { compactVerify } from 'jose';
import {
  CodedError,
  DEFAULT_LIMITS,
  DEFAULT_TOKEN_RULES,
  MESSAGE_FAILURE_CODES,
  ProtocolError,
  checkCredentialAt,
  checkMessageClaims,
  decodeSignedMessage,
  isCodedError,
  isProtocolError,
  messageCandidates,
  systemClock,
  type Clock,
  type DecodedMessage,
  type MessageCredential,
  type MessageFailureCode,
  type VerifiedMessage,
} from '../protocol/index.ts';
import { parseJsonObject } from '../protocol/internal/compact-jws.ts';
import { credentialOf, type DeviceKeySource } from './key-source.ts';
import type { ReplayWindow } from './replay-window.ts';

/** Why `verifyDeviceMessage` refused a message (protocol.md §Signed messages; docs/sdk.md §Signed messages). */
export type DeviceMessageErrorCode = MessageFailureCode;

/** Every code a {@link DeviceMessageError} can carry. */
export const DEVICE_MESSAGE_ERROR_CODES: readonly DeviceMessageErrorCode[] = Object.freeze([...MESSAGE_FAILURE_CODES]);

/**
 * A signed message was refused: it is not what the device the topic names published, or it was
 * published before (a replay). `code` is stable; `message` never contains key material.
 *
 * @example
 * ```ts
 * try { await verifyDeviceMessage(topic, payload, opts) } catch (e) { if (isDeviceMessageError(e, 'message_replayed')) return; throw e; }
 * ```
 */
export class DeviceMessageError extends CodedError<DeviceMessageErrorCode> {
  override readonly name = 'DeviceMessageError';
}

/**
 * Type guard: `e` is a DeviceMessageError, optionally with one of `codes`.
 *
 * @example
 * ```ts
 * if (isDeviceMessageError(err, 'signature_invalid', 'topic_mismatch')) alarm(topic);
 * ```
 */
export function isDeviceMessageError<C extends DeviceMessageErrorCode>(e: unknown, ...codes: C[]): e is DeviceMessageError & { code: C } {
  return isCodedError(e, DeviceMessageError, codes);
}

/** Options of {@link verifyDeviceMessage}. */
export interface VerifyDeviceMessageOptions {
  /** The devices' key histories (e.g. `RegistryKeySource`). */
  keys: DeviceKeySource;
  /**
   * The sequence window: a message already accepted, or below the window, is `message_replayed`.
   * One per consumer, kept across calls. `null` checks no replay (re-verifying stored messages).
   */
  replay: ReplayWindow | null;
  /** The broker's audience (messages carry `<audience>:message`). Default `latchkey`. */
  audience?: string;
  /** Allowed clock skew for `iat`, seconds. Default 300. */
  clockTolerance?: number;
  /** Epoch ms. Default `Date.now`. */
  clock?: Clock;
  /** Longest message accepted, bytes. Default 262144 (the broker's default packet size). */
  maxMessageBytes?: number;
}

/** A message that verified: who published which bytes on which topic, when and with which key. */
export type VerifiedDeviceMessage = VerifiedMessage;

const REFRESHABLE: ReadonlySet<string> = new Set(['unknown_principal', 'unknown_credential', 'signature_invalid']);

/**
 * Verifies a signed message as it arrived on `topic` (protocol.md §Signed messages) with the keys
 * the registry says the topic's device had: header, signature (jose, ES256), claims, the key's
 * validity at `iat`, then the sequence window. A message naming a `kid` the cached history does not
 * know, or that no cached key verifies, asks the key source once more for a history fetched after
 * the message was signed (the device may have rotated its key). Rejects with a {@link DeviceMessageError}; a key source that cannot
 * answer rejects with its own error (e.g. a `DeviceClientError` `network_error`): retry later.
 *
 * @example
 * ```ts
 * const replay = new ReplayWindow();
 * await svc.subscribe('devices/+/telemetry/#', async (topic, payload) => {
 *   const m = await verifyDeviceMessage(topic, payload, { keys, replay });
 *   store(m.deviceId, m.seq, JSON.parse(m.payload.toString()));
 * });
 * ```
 */
export async function verifyDeviceMessage(topic: string, payload: Uint8Array | string, o: VerifyDeviceMessageOptions): Promise<VerifiedDeviceMessage> {
  if (o === null || typeof o !== 'object' || typeof o.keys?.keysOf !== 'function') throw new TypeError('verifyDeviceMessage: options.keys is required');
  if (o.replay === undefined) throw new TypeError('verifyDeviceMessage: options.replay is required (a ReplayWindow, or null to check no replay)');
  const rules = { audience: o.audience ?? DEFAULT_TOKEN_RULES.audience, clockTolerance: o.clockTolerance ?? DEFAULT_TOKEN_RULES.clockTolerance };
  const clock = o.clock ?? systemClock;
  try {
    const decoded = decodeSignedMessage(payload, topic, o.maxMessageBytes ?? DEFAULT_LIMITS.maxPacketSize);
    let signer: MessageCredential;
    try {
      signer = await findSigner(decoded, o.keys, undefined);
    } catch (err) {
      if (!isProtocolError(err) || !REFRESHABLE.has(err.code)) throw err;
      // a key registered after the cached history was fetched would be in a history fetched after the message was signed
      signer = await findSigner(decoded, o.keys, Math.min(clock(), (claimedIat(decoded) + 1) * 1000));
    }
    const json = parseJsonObject(decoded.jws.payload, 'claims', 'message_malformed');
    const { claims, payload: body } = checkMessageClaims(json, rules, { deviceId: decoded.deviceId, topic }, clock());
    checkCredentialAt(signer, claims.iat);
    // protocol.md §Signed messages, Replay: only a verified message may move the window
    if (o.replay !== null && !o.replay.accept(decoded.deviceId, claims.seq)) {
      throw new ProtocolError('message_replayed', 'this sequence number was seen before, or is below the window');
    }
    return { deviceId: decoded.deviceId, topic, seq: claims.seq, iat: claims.iat, kid: signer.kid, payload: body };
  } catch (err) {
    if (isProtocolError(err) && (MESSAGE_FAILURE_CODES as readonly string[]).includes(err.code)) {
      throw new DeviceMessageError(err.code as DeviceMessageErrorCode, err.message, { cause: err });
    }
    throw err;
  }
}

/**
 * The `iat` the (not yet verified) claims state, or 0: read only to decide how fresh a key history
 * must be, never trusted for anything else.
 */
function claimedIat(decoded: DecodedMessage): number {
  try {
    const iat = parseJsonObject(decoded.jws.payload, 'claims', 'message_malformed').iat;
    return typeof iat === 'number' && Number.isSafeInteger(iat) && iat >= 0 ? iat : 0;
  } catch {
    return 0;
  }
}

/** The candidate keys from the source's history, and the first whose signature verifies (jose, ES256). */
async function findSigner(decoded: DecodedMessage, keys: DeviceKeySource, fetchedSince: number | undefined): Promise<MessageCredential> {
  const records = await keys.keysOf(decoded.deviceId, fetchedSince === undefined ? undefined : { fetchedSince });
  const candidates = messageCandidates(records === null ? null : records.map(credentialOf), decoded.kid);
  for (const c of candidates) {
    try {
      await compactVerify(decoded.text, c.key, { algorithms: ['ES256'] });
      return c;
    } catch {
      // another candidate may verify it
    }
  }
  throw new ProtocolError('signature_invalid', 'signature does not verify');
}
