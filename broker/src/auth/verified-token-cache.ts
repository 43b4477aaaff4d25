import * as nodeCrypto from 'node:crypto';
import type { VerifiedToken } from '@latchkey/device-sdk/protocol';
import type { CachedPrincipal } from './credential-cache.ts';

/** A token just verified, as `set` takes it. */
export interface VerifiedEntry {
  readonly principal: string;
  /** the principal record it was verified against */
  readonly record: CachedPrincipal;
  readonly token: VerifiedToken;
  /** epoch ms of the verification: a clock that went back is no hit */
  readonly verifiedAt: number;
  /** epoch ms: exp + clock tolerance, the first instant verifyToken refuses the token as expired */
  readonly diesAt: number;
}

/** What the cache keeps: the record without its KeyObjects (~3.4 KB each, the key cache's to keep), and the signer's expiry. */
interface Kept extends VerifiedEntry {
  /** the expiry of the credential that verified the token (epoch ms, null: none) */
  readonly signerExpiresAt: number | null;
}

/**
 * Tokens this broker has verified (issue 12; docs/operations.md §Reconnect storms), so that a
 * device reconnecting with a token it already used skips the signature check and claim parsing.
 * Keyed by the SHA-256 of the whole token, so that a lookup compares fixed-size digests, never
 * token bytes (nothing leaks by timing how much of a token matched), and a token is kept only as
 * its digest. LRU-bounded, and at most {@link TOKENS_PER_PRINCIPAL} per principal; an entry is a hit only while:
 * - it is for the principal the client id names (the token's `sub` is bound to it);
 * - the clock is in [verifiedAt, exp + tolerance): every time rule of the token held at
 *   verifiedAt and `iat`/`nbf` only get more valid as time goes on;
 * - the credential that verified it is unexpired; and no change-feed event for the principal
 *   (key removed, blocked, deleted, anything) came since: `invalidate` drops all its entries.
 * An entry keeps the principal's record without its KeyObjects (~0.6 KB an entry, measured).
 * Refusals are never cached, nor is anything for an unknown principal; the broker does not use it
 * at all with `requireJti` (single-use tokens). Any doubt is a miss, and a miss is the full
 * verification: the cache can only skip work that would have given the same answer.
 *
 * @example
 * ```ts
 * const cache = new VerifiedTokenCache(50_000);
 * const digest = VerifiedTokenCache.digest(password);
 * const hit = cache.get(digest, 'thermo-1', Date.now()); // null: verify, then cache.set(...)
 * ```
 */
/** One-shot `crypto.hash` (Node ≥ 20.12: no Hash object per connect, ~4× cheaper); a Hash object before. */
const sha256: (data: Uint8Array) => string =
  typeof nodeCrypto.hash === 'function'
    ? (data) => nodeCrypto.hash('sha256', data, 'base64')
    : (data) => nodeCrypto.createHash('sha256').update(data).digest('base64');

/**
 * Tokens kept per principal: the one a device holds and the one it refreshed from. A device
 * that connects with a new token each time (as the benchmarks do, or a hostile one) replaces
 * its own entries and cannot push the rest of the fleet's out of the LRU.
 */
export const TOKENS_PER_PRINCIPAL = 2;

export class VerifiedTokenCache {
  readonly #capacity: number;
  readonly #entries = new Map<string, Kept>();
  /** principal → digests of its entries, for `invalidate` */
  readonly #byPrincipal = new Map<string, Set<string>>();

  /** `capacity` 0: caches nothing. */
  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) throw new TypeError('capacity must be a non-negative integer');
    this.#capacity = capacity;
  }

  /** The SHA-256 of the whole token (base64: 44 characters). */
  static digest(token: Uint8Array): string {
    return sha256(token);
  }

  get size(): number {
    return this.#entries.size;
  }

  get enabled(): boolean {
    return this.#capacity > 0;
  }

  /** The entry for `digest` if it may stand for a verification of it for `principal` at `now`; else null (a dead entry is dropped). */
  get(digest: string, principal: string, now: number): VerifiedEntry | null {
    const hit = this.#entries.get(digest);
    if (hit === undefined) return null;
    if (hit.principal !== principal) return null;
    if (now < hit.verifiedAt || now >= hit.diesAt || (hit.signerExpiresAt !== null && hit.signerExpiresAt <= now)) {
      this.#delete(digest, hit.principal);
      return null;
    }
    // most recently used goes to the end of the Map's insertion order
    this.#entries.delete(digest);
    this.#entries.set(digest, hit);
    return hit;
  }

  /** Remembers a token verified by one of `entry.record`'s credentials (the one its `kid` names). */
  set(digest: string, entry: VerifiedEntry): void {
    if (this.#capacity === 0) return;
    const signer = entry.record.credentials.find((c) => c.kid === entry.token.kid);
    if (signer === undefined) return;
    const r = entry.record;
    const kept: Kept = {
      principal: entry.principal,
      record: Object.freeze({ kind: r.kind, principal: r.principal, blocked: r.blocked, acl: r.acl, credentials: [], signedTelemetry: r.signedTelemetry, gcp: r.gcp }),
      token: entry.token,
      verifiedAt: entry.verifiedAt,
      diesAt: entry.diesAt,
      signerExpiresAt: signer.expiresAt,
    };
    const old = this.#entries.get(digest);
    if (old !== undefined) this.#delete(digest, old.principal);
    if (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.entries().next();
      if (oldest.done !== true) this.#delete(oldest.value[0], oldest.value[1].principal);
    }
    const own = this.#byPrincipal.get(entry.principal);
    if (own !== undefined && own.size >= TOKENS_PER_PRINCIPAL) {
      const oldest = own.values().next();
      if (oldest.done !== true) this.#delete(oldest.value, entry.principal);
    }
    let digests = this.#byPrincipal.get(entry.principal);
    if (digests === undefined) this.#byPrincipal.set(entry.principal, (digests = new Set()));
    this.#entries.set(digest, kept);
    digests.add(digest);
  }

  /** Forget every token of a principal (registry change feed: any change to it). */
  invalidate(principal: string): void {
    const digests = this.#byPrincipal.get(principal);
    if (digests === undefined) return;
    for (const d of digests) this.#entries.delete(d);
    this.#byPrincipal.delete(principal);
  }

  clear(): void {
    this.#entries.clear();
    this.#byPrincipal.clear();
  }

  #delete(digest: string, principal: string): void {
    this.#entries.delete(digest);
    const digests = this.#byPrincipal.get(principal);
    if (digests === undefined) return;
    digests.delete(digest);
    if (digests.size === 0) this.#byPrincipal.delete(principal);
  }
}
