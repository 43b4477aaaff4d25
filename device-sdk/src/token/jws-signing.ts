/**
 * What every JWS the SDK signs shares (connect tokens, enrollment proofs, signed messages): the
 * ES256 signer from a private key or a secure element, the compact serialization, the clock, and
 * the protocol core's rules for `kid` and audience, so nothing is signed that a verifier refuses.
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import * as base64url from 'jose/base64url';
import { isAudience } from '../protocol/claims.ts';
import { MAX_AUDIENCE_LENGTH, MAX_KID_LENGTH, systemClock, type Clock } from '../protocol/limits.ts';
import { isKid } from '../protocol/token-header.ts';

/** A signer for keys held in a secure element: returns the 64-byte IEEE P1363 r‖s ES256 signature of `data`. */
export type Es256Signer = (data: Uint8Array) => Promise<Uint8Array>;

const ES256_SIGNATURE_BYTES = 64;

/**
 * RFC 7515 §7.1 compact serialization: one path for both signers. The signing input is
 * `b64u(header).b64u(payload)`; the signature is the 64-byte r‖s of RFC 7518 §3.4.
 */
export async function signCompact(header: object, claims: object, signer: Es256Signer): Promise<string> {
  const signingInput = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}`;
  const signature = await signer(new TextEncoder().encode(signingInput));
  if (!(signature instanceof Uint8Array) || signature.byteLength !== ES256_SIGNATURE_BYTES) {
    throw new TypeError('the signer must return the 64-byte IEEE P1363 r‖s signature (not DER)');
  }
  return `${signingInput}.${base64url.encode(signature)}`;
}

/** Exactly one of a P-256 private key and a custom signer. */
export function signerOf(privateKey: KeyObject | undefined, sign: Es256Signer | undefined): Es256Signer {
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

/** The verifier's rules (protocol core), so no JWS is signed that is refused for its header or claims. */
export function checkKid(kid: unknown): string {
  if (!isKid(kid)) throw new TypeError(`kid must be a non-empty string of at most ${MAX_KID_LENGTH} characters`);
  return kid;
}

export function checkAudience(audience: unknown): string {
  if (!isAudience(audience)) throw new TypeError(`audience must be a non-empty string of at most ${MAX_AUDIENCE_LENGTH} characters`);
  return audience;
}

/** The clock plus the offset, epoch ms (a device without a real-time clock corrects it with `GET /v1/time`). */
export function nowMs(clock: Clock | undefined, offsetMs: number | undefined): number {
  if (clock !== undefined && typeof clock !== 'function') throw new TypeError('clock must be a function');
  if (offsetMs !== undefined && (typeof offsetMs !== 'number' || !Number.isFinite(offsetMs))) {
    throw new TypeError('clockOffsetMs must be a finite number');
  }
  const now = (clock ?? systemClock)() + (offsetMs ?? 0);
  if (!Number.isFinite(now) || now < 0) throw new TypeError('the clock must return epoch milliseconds');
  return now;
}

/** Integer seconds (RFC 7519 §2 NumericDate) from the clock plus the offset. */
export function nowSeconds(clock: Clock | undefined, offsetMs: number | undefined): number {
  return Math.floor(nowMs(clock, offsetMs) / 1000);
}
