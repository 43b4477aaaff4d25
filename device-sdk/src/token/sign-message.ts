import type { KeyObject } from 'node:crypto';
import * as base64url from 'jose/base64url';
import { DEFAULT_TOKEN_RULES, type Clock } from '../protocol/limits.ts';
import { MESSAGE_TYP, messageAudience } from '../protocol/signed-message.ts';
import { deviceOfPublishTopic } from '../protocol/topics.ts';
import { encodePayload } from '../messaging/encode-payload.ts';
import { checkAudience, checkKid, nowSeconds, signCompact, signerOf, type Es256Signer } from './jws-signing.ts';

/** Options of {@link signDeviceMessage}. */
export interface SignDeviceMessageOptions {
  /** The device whose key signs: `sub`. */
  deviceId: string;
  /** The device → cloud topic the message is published on (`devices/{id}/telemetry[/…]`, `/state`, `/replies/{commandId}`). */
  topic: string;
  /** What to publish: bytes and strings as they are, anything else as JSON (like `publishTelemetry`). */
  payload: unknown;
  /** The device's next sequence number: a non-negative integer below 2^53, larger than every one it signed before. */
  seq: number;
  /** The device's P-256 private key. Exactly one of `privateKey` and `sign`. */
  privateKey?: KeyObject;
  /** A signer for a key that never leaves its secure element. */
  sign?: Es256Signer;
  /** Names the credential that verifies the message (protocol.md §Signed messages, Header). */
  kid?: string;
  /** The broker's audience; the message's `aud` is `<audience>:message`. Default `latchkey`. */
  audience?: string;
  /** Epoch ms. Default `Date.now`. */
  clock?: Clock;
  /** Added to the clock (a device without a real-time clock, from `GET /v1/time`). */
  clockOffsetMs?: number;
}

/** A message signer bound to one device's key, `kid` and audience (checked once). */
export interface BoundMessageSigner {
  deviceId: string;
  signer: Es256Signer;
  kid: string | undefined;
  /** `<audience>:message` */
  aud: string;
}

/**
 * Signs one message with a bound signer: header `{alg:'ES256', typ:'latchkey-message+jwt'[, kid]}`,
 * claims `{sub, aud, iat, topic, seq, body}` with `body` the base64url of the payload bytes.
 */
export function signWith(b: BoundMessageSigner, topic: string, payload: Buffer, seq: number, iat: number): Promise<string> {
  const header = b.kid === undefined ? { alg: 'ES256', typ: MESSAGE_TYP } : { alg: 'ES256', typ: MESSAGE_TYP, kid: b.kid };
  return signCompact(header, { sub: b.deviceId, aud: b.aud, iat, topic, seq, body: base64url.encode(payload) }, b.signer);
}

/** Caller misuse is a TypeError: a topic that is not one of `deviceId`'s device → cloud topics, a bad seq. */
export function checkMessageFields(deviceId: unknown, topic: unknown, seq: unknown): void {
  if (typeof topic !== 'string' || deviceOfPublishTopic(topic) !== deviceId) {
    throw new TypeError('topic must be one of the device\'s own device → cloud topics (telemetry, state, replies)');
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new TypeError('seq must be a non-negative integer below 2^53');
}

/**
 * Signs a message with the device's key (protocol.md §Signed messages): the compact JWS to publish
 * as the MQTT payload on `topic`. `DeviceClient` does this for you with `{ signed: true }` and keeps
 * the sequence; use this to sign by hand (a gateway, `mosquitto_pub -m`).
 *
 * @example
 * ```ts
 * const jws = await signDeviceMessage({ deviceId: 'thermo-1', topic: 'devices/thermo-1/telemetry', payload: { celsius: 21.5 }, seq: 1, privateKey });
 * ```
 */
export async function signDeviceMessage(o: SignDeviceMessageOptions): Promise<string> {
  if (o === null || typeof o !== 'object') throw new TypeError('signDeviceMessage: options are required');
  checkMessageFields(o.deviceId, o.topic, o.seq);
  const bound: BoundMessageSigner = {
    deviceId: o.deviceId,
    signer: signerOf(o.privateKey, o.sign),
    kid: o.kid === undefined ? undefined : checkKid(o.kid),
    aud: messageAudience(checkAudience(o.audience ?? DEFAULT_TOKEN_RULES.audience)),
  };
  return signWith(bound, o.topic, encodePayload(o.payload), o.seq, nowSeconds(o.clock, o.clockOffsetMs));
}
