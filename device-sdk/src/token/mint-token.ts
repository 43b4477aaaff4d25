import { randomBytes, type KeyObject } from 'node:crypto';
// the protocol core's modules themselves, not its index: the light token entry loads no verifier
import { isJti } from '../protocol/claims.ts';
import { isDeviceId, isPrincipal } from '../protocol/ids.ts';
import { DEFAULT_TOKEN_RULES, enrollAudience, MAX_ENROLL_PROOF_LIFETIME, MAX_JTI_LENGTH, type Clock } from '../protocol/limits.ts';
import { checkAudience, checkKid, nowSeconds, signCompact, signerOf, type Es256Signer } from './jws-signing.ts';

export type { Es256Signer } from './jws-signing.ts';

export interface MintConnectTokenOptions {
  /** The device id, or `svc:{name}` for a service account (protocol.md §Service accounts). */
  subject: string;
  /** The P-256 private key. Exactly one of `privateKey` and `sign`. */
  privateKey?: KeyObject;
  /** A signer for a key that never leaves its secure element. Exactly one of `privateKey` and `sign`. */
  sign?: Es256Signer;
  /** The broker's audience. Default `latchkey`. */
  audience?: string;
  /** `exp − iat`, integer seconds in 1..86400. Default 3600. */
  ttlSeconds?: number;
  /** Names the credential to verify with (protocol.md §The connect token, Header). */
  kid?: string;
  /** `true` adds a random 128-bit base64url `jti`; a string is used as the `jti`. */
  jti?: boolean | string;
  /** Added to the clock, for devices without a real-time clock (`GET /v1/time`). */
  clockOffsetMs?: number;
  /** Epoch ms. Default `Date.now`. */
  clock?: Clock;
}

export interface MintedToken {
  token: string;
  /** seconds */
  iat: number;
  /** seconds */
  exp: number;
}

const DEFAULT_AUDIENCE = DEFAULT_TOKEN_RULES.audience;
const DEFAULT_TTL = 3600;
/** The verifier's default max token lifetime: a longer-lived token would be refused by a default broker. */
const MAX_TTL = DEFAULT_TOKEN_RULES.maxTokenLifetime;

type Header = { alg: 'ES256'; typ: 'JWT'; kid?: string };
type Claims = { sub: string; aud: string; iat: number; exp: number; jti?: string };

/**
 * Mints an ES256 connect token (protocol.md §The connect token) for MQTT CONNECT's password.
 * Header `{alg:'ES256', typ:'JWT'}` (+ `kid`); claims `sub`, `aud`, integer `iat` and `exp`
 * (+ `jti`). Caller misuse (bad subject, both or neither signer, ttl out of range) throws TypeError.
 *
 * @example
 * ```ts
 * const { token, exp } = await mintConnectToken({ subject: 'thermo-1', privateKey, ttlSeconds: 600 });
 * mqtt.connect(url, { clientId: 'thermo-1', username: 'thermo-1', password: token });
 * ```
 */
export async function mintConnectToken(o: MintConnectTokenOptions): Promise<MintedToken> {
  if (o === null || typeof o !== 'object') throw new TypeError('mintConnectToken: options are required');
  const subject = checkSubject(o.subject);
  const signer = signerOf(o.privateKey, o.sign);
  const audience = checkAudience(o.audience ?? DEFAULT_AUDIENCE);
  const ttl = checkTtl(o.ttlSeconds ?? DEFAULT_TTL, MAX_TTL);
  const header: Header = { alg: 'ES256', typ: 'JWT' };
  if (o.kid !== undefined) header.kid = checkKid(o.kid);
  const jti = jtiOf(o.jti);
  const iat = nowSeconds(o.clock, o.clockOffsetMs);
  const claims: Claims = { sub: subject, aud: audience, iat, exp: iat + ttl };
  if (jti !== undefined) claims.jti = jti;
  return { token: await signCompact(header, claims, signer), iat, exp: claims.exp };
}

/**
 * Mints the enrollment proof of api.md §Zero-touch enrollment: an ES256 JWT signed by the
 * device's new key with `sub` = deviceId, `aud` = `<audience>:enroll` (`audience` is the
 * broker audience, default `latchkey`), and `exp − iat` ≤ 300 s (default 300).
 *
 * @example
 * ```ts
 * const proof = await mintEnrollProof({ deviceId: 'thermo-1', privateKey });
 * ```
 */
export async function mintEnrollProof(o: {
  deviceId: string;
  privateKey?: KeyObject;
  sign?: Es256Signer;
  audience?: string;
  ttlSeconds?: number;
  clockOffsetMs?: number;
  clock?: Clock;
}): Promise<string> {
  if (o === null || typeof o !== 'object') throw new TypeError('mintEnrollProof: options are required');
  if (!isDeviceId(o.deviceId)) throw new TypeError('mintEnrollProof: deviceId must be a valid device id');
  const signer = signerOf(o.privateKey, o.sign);
  const audience = enrollAudience(checkAudience(o.audience ?? DEFAULT_AUDIENCE));
  const ttl = checkTtl(o.ttlSeconds ?? MAX_ENROLL_PROOF_LIFETIME, MAX_ENROLL_PROOF_LIFETIME);
  const iat = nowSeconds(o.clock, o.clockOffsetMs);
  return signCompact({ alg: 'ES256', typ: 'JWT' }, { sub: o.deviceId, aud: audience, iat, exp: iat + ttl }, signer);
}

/** protocol.md §Device ids / §Service accounts: `sub` is a device id or `svc:{name}`. */
function checkSubject(subject: unknown): string {
  if (isPrincipal(subject)) return subject;
  throw new TypeError('subject must be a device id or svc:{name}');
}

function checkTtl(ttl: unknown, max: number): number {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl <= 0 || ttl > max) {
    throw new TypeError(`ttlSeconds must be an integer in 1..${max}`);
  }
  return ttl;
}

function jtiOf(jti: unknown): string | undefined {
  if (jti === undefined || jti === false) return undefined;
  if (jti === true) return randomBytes(16).toString('base64url');
  if (!isJti(jti)) throw new TypeError(`jti must be a non-empty string of at most ${MAX_JTI_LENGTH} characters`);
  return jti;
}
