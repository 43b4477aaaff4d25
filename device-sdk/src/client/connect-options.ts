import type { KeyObject } from 'node:crypto';
import { resolveBackoff, type BackoffOptions } from '../session/backoff.ts';
import { fetchClockOffset } from '../http/clock-offset.ts';
import { DeviceClientError } from '../errors.ts';
import { loadPrivateKeyPem } from '../keys/keys.ts';
import { mintConnectToken, type Es256Signer } from '../token/mint-token.ts';
import { signerOf } from '../token/jws-signing.ts';
import type { QueueOverflow } from '../messaging/offline-queue.ts';
import { assertDeviceId, DEFAULT_LIMITS, DEFAULT_TOKEN_RULES, DEVICE_ID_PATTERN, systemClock, type Clock } from '../protocol/index.ts';
import { Session, type TlsOptions } from '../session/session.ts';
import { TokenSource } from '../token/token-source.ts';

/** Options shared by {@link DeviceClient.connect} and {@link ServiceClient.connect}. */
export interface ConnectOptions {
  /**
   * `mqtt://host:1883`, `mqtts://…`, `ws://…/mqtt` or `wss://…`; or several (the nodes of a
   * cluster): the client starts at one drawn at random and moves to the next whenever a connection
   * is lost or an attempt fails.
   */
  brokerUrl: string | readonly string[];
  /** The P-256 private key (KeyObject or PKCS#8/SEC1 PEM). Exactly one of `privateKey` and `sign`. */
  privateKey?: KeyObject | string;
  /** Signer for a key held in a secure element (64-byte P1363 signature). */
  sign?: Es256Signer;
  /** Names the credential the broker should verify with. */
  kid?: string;
  /** The broker's audience. Default `latchkey`. */
  audience?: string;
  /** Lifetime of each connect token, seconds. Default 3600. Refreshed at 80–90% of it. */
  tokenTtlSeconds?: number;
  /** Put a random `jti` in every token (brokers with `requireJti`). Default false. */
  jti?: boolean;
  /** Epoch-ms clock used to mint tokens and schedule refreshes. Default `Date.now`. */
  clock?: Clock;
  /** Added to `clock` when minting, ms. */
  clockOffsetMs?: number;
  /** Correct the clock from `GET {provisioningUrl}/v1/time` before the first connect (retried with backoff). */
  provisioningUrl?: string;
  /** Reconnect backoff (full jitter). Default `{ initialMs: 500, maxMs: 30000 }`. */
  backoff?: BackoffOptions;
  /** Publishes kept while disconnected. Default 1000. */
  maxQueuedMessages?: number;
  /** When that queue is full: evict the oldest (default) or refuse the new publish. */
  queueOverflow?: QueueOverflow;
  /** `connect()` rejects with `connect_timeout` if no session is up by then, ms. Default 30000; 0 waits forever. */
  connectTimeoutMs?: number;
  /** One attempt waits this long for CONNACK, ms. Default 10000. */
  connackTimeoutMs?: number;
  /** MQTT keep-alive, seconds. Default 60. */
  keepaliveSeconds?: number;
  /** Largest PUBLISH the broker accepts, bytes. Default 262144 (protocol.md §Limits). */
  maxPacketSize?: number;
  /** TLS settings for `mqtts://` / `wss://`. */
  tls?: TlsOptions;
  /** MQTT username (ignored by the broker, but always sent). Default: the client id. */
  username?: string;
  /** Random numbers in [0, 1): backoff jitter, the refresh point, the first broker URL. Default `Math.random` (tests inject their own). */
  random?: () => number;
}

const BROKER_PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:', 'ws:', 'wss:']);

/** Caller misuse (architecture.md §Conventions): a bad deviceId option is a TypeError naming the rule. */
export function deviceIdOption(id: unknown): string {
  try {
    return assertDeviceId(id);
  } catch {
    throw new TypeError(`deviceId must match ${DEVICE_ID_PATTERN.source}`);
  }
}

function positiveInt(name: string, v: unknown, dflt: number, min = 1): number {
  const n = v ?? dflt;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw new TypeError(`${name} must be an integer ≥ ${min}`);
  return n;
}

function checkBrokerUrl(url: unknown): string {
  if (typeof url !== 'string') throw new TypeError('brokerUrl must be a URL string or an array of them');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('brokerUrl must be a valid URL');
  }
  if (!BROKER_PROTOCOLS.has(parsed.protocol)) throw new TypeError('brokerUrl must use mqtt:, mqtts:, ws: or wss:');
  return url;
}

/** One URL or a non-empty list of at most 64. */
function checkBrokerUrls(urls: unknown): readonly string[] {
  if (!Array.isArray(urls)) return [checkBrokerUrl(urls)];
  if (urls.length === 0 || urls.length > 64) throw new TypeError('brokerUrl must list 1 to 64 URLs');
  return Object.freeze(urls.map(checkBrokerUrl));
}

function privateKeyOf(k: KeyObject | string | undefined): KeyObject | undefined {
  return typeof k === 'string' ? loadPrivateKeyPem(k) : k;
}

/** What a client signs messages with: the key that signs its tokens, its `kid` and audience, its corrected clock. */
export interface ClientSigning {
  signer: Es256Signer;
  kid: string | undefined;
  audience: string;
  /** the clock plus the offset from `GET /v1/time`, epoch ms */
  now: () => number;
}

/**
 * Validates the shared options once (caller misuse throws TypeError), mints a first token (so a
 * broken key or signer fails at once with `signing_failed`) and opens the session.
 */
export async function openSession(o: ConnectOptions, ids: { clientId: string; subject: string }): Promise<{ session: Session; signing: ClientSigning }> {
  if (o === null || typeof o !== 'object') throw new TypeError('options are required');
  const brokerUrls = checkBrokerUrls(o.brokerUrl);
  const random = o.random ?? Math.random;
  if (typeof random !== 'function') throw new TypeError('random must be a function');
  const clock = o.clock ?? systemClock;
  if (typeof clock !== 'function') throw new TypeError('clock must be a function');
  const ttlSeconds = positiveInt('tokenTtlSeconds', o.tokenTtlSeconds, 3600);
  const privateKey = privateKeyOf(o.privateKey);
  if (o.username !== undefined && typeof o.username !== 'string') throw new TypeError('username must be a string');
  if (o.provisioningUrl !== undefined) new URL(o.provisioningUrl); // throws TypeError when malformed
  const mintOptions = { subject: ids.subject, privateKey, sign: o.sign, kid: o.kid, audience: o.audience, ttlSeconds, jti: o.jti === true, clock };
  const tokens = new TokenSource({
    clock,
    ttlSeconds,
    clockOffsetMs: o.clockOffsetMs ?? 0,
    mint: (clockOffsetMs) => mintConnectToken({ ...mintOptions, clockOffsetMs }),
  });
  try {
    await tokens.ready();
  } catch (cause) {
    if (cause instanceof TypeError) throw cause; // misuse: bad key, both or neither signer, bad ttl
    throw new DeviceClientError('signing_failed', 'could not sign a connect token', { cause });
  }
  const provisioningUrl = o.provisioningUrl;
  const signing: ClientSigning = {
    signer: signerOf(privateKey, o.sign), // checked by the first token already
    kid: o.kid,
    audience: o.audience ?? DEFAULT_TOKEN_RULES.audience,
    now: () => clock() + tokens.clockOffsetMs,
  };
  const session = await Session.open({
    clientId: ids.clientId,
    username: o.username ?? ids.clientId,
    brokerUrls,
    tokens,
    clock,
    backoff: resolveBackoff(o.backoff),
    maxQueuedMessages: positiveInt('maxQueuedMessages', o.maxQueuedMessages, DEFAULT_LIMITS.maxQueuedMessages, 0),
    queueOverflow: o.queueOverflow ?? 'drop-oldest',
    connectTimeoutMs: positiveInt('connectTimeoutMs', o.connectTimeoutMs, 30_000, 0),
    connackTimeoutMs: positiveInt('connackTimeoutMs', o.connackTimeoutMs, 10_000),
    keepaliveSeconds: positiveInt('keepaliveSeconds', o.keepaliveSeconds, 60, 0),
    maxPacketSize: positiveInt('maxPacketSize', o.maxPacketSize, DEFAULT_LIMITS.maxPacketSize),
    tls: o.tls,
    prepare:
      provisioningUrl === undefined
        ? undefined
        : async () => tokens.setClockOffset(await fetchClockOffset(provisioningUrl, { clock })),
    random,
  });
  return { session, signing };
}
