import { randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import * as base64url from 'jose/base64url';
// the protocol core's modules themselves, not its index: the light token entry loads no verifier
import { isAudience, isJti } from '../protocol/claims.ts';
import { isDeviceId, isPrincipal } from '../protocol/ids.ts';
import {
  DEFAULT_TOKEN_RULES,
  enrollAudience,
  MAX_AUDIENCE_LENGTH,
  MAX_ENROLL_PROOF_LIFETIME,
  MAX_JTI_LENGTH,
  MAX_KID_LENGTH,
  systemClock,
  type Clock,
} from '../protocol/limits.ts';
import { isKid } from '../protocol/token-header.ts';

/** A signer for keys held in a secure element: returns the 64-byte IEEE P1363 r‖s ES256 signature of `data`. */
export type Es256Signer = (data: Uint8Array) => Promise<Uint8Array>;

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
const ES256_SIGNATURE_BYTES = 64;

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

/**
 * RFC 7515 §7.1 compact serialization: one path for both signers. The signing input is
 * `b64u(header).b64u(payload)`; the signature is the 64-byte r‖s of RFC 7518 §3.4.
 */
async function signCompact(header: Header, claims: Claims, signer: Es256Signer): Promise<string> {
  const signingInput = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}`;
  const signature = await signer(new TextEncoder().encode(signingInput));
  if (!(signature instanceof Uint8Array) || signature.byteLength !== ES256_SIGNATURE_BYTES) {
    throw new TypeError('the signer must return the 64-byte IEEE P1363 r‖s signature (not DER)');
  }
  return `${signingInput}.${base64url.encode(signature)}`;
}

/** Exactly one of a P-256 private key and a custom signer. */
function signerOf(privateKey: KeyObject | undefined, sign: Es256Signer | undefined): Es256Signer {
  if ((privateKey === undefined) === (sign === undefined)) {
    throw new TypeError('pass exactly one of privateKey and sign');
  }
  if (sign !== undefined) {
    if (typeof sign !== 'function') throw new TypeError('sign must be a function');
    return sign;
  }
  const key = privateKey!;
  if (
    key === null ||
    typeof key !== 'object' ||
    key.type !== 'private' ||
    key.asymmetricKeyType !== 'ec' ||
    key.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new TypeError('privateKey must be a private EC P-256 KeyObject');
  }
  // RFC 7518 §3.4: ECDSA P-256 SHA-256, signature as r‖s.
  return async (data) => cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
}

/** protocol.md §Device ids / §Service accounts: `sub` is a device id or `svc:{name}`. */
function checkSubject(subject: unknown): string {
  if (isPrincipal(subject)) return subject;
  throw new TypeError('subject must be a device id or svc:{name}');
}

/** The verifier's rules (protocol core), so no token is minted that the broker refuses for its header or claims. */
function checkKid(kid: unknown): string {
  if (!isKid(kid)) throw new TypeError(`kid must be a non-empty string of at most ${MAX_KID_LENGTH} characters`);
  return kid;
}

function checkAudience(audience: unknown): string {
  if (!isAudience(audience)) throw new TypeError(`audience must be a non-empty string of at most ${MAX_AUDIENCE_LENGTH} characters`);
  return audience;
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

/** Integer seconds (RFC 7519 §2 NumericDate) from the clock plus the offset. */
function nowSeconds(clock: Clock | undefined, offsetMs: number | undefined): number {
  if (clock !== undefined && typeof clock !== 'function') throw new TypeError('clock must be a function');
  if (offsetMs !== undefined && (typeof offsetMs !== 'number' || !Number.isFinite(offsetMs))) {
    throw new TypeError('clockOffsetMs must be a finite number');
  }
  const now = (clock ?? systemClock)() + (offsetMs ?? 0);
  if (!Number.isFinite(now) || now < 0) throw new TypeError('the clock must return epoch milliseconds');
  return Math.floor(now / 1000);
}
