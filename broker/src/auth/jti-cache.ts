import { ProtocolError } from '@latchkey/device-sdk/protocol';

/**
 * protocol.md §The connect token: with `requireJti`, a `jti` is single-use within its token's
 * lifetime. Entries are kept until the token's `exp` + clock tolerance (after that the token
 * itself is refused), so memory is bounded by the tokens live at once, capped at `capacity`.
 * When the cache is full of live entries it fails closed: `internal_error` (CONNACK 3), never
 * forgetting a live `jti` (which would allow a replay).
 *
 * @example
 * ```ts
 * const jtis = new JtiCache({ capacity: 200_000, toleranceMs: 300_000 });
 * verifyToken(token, { ...rules, checkJti: (p, jti, expMs) => jtis.use(p, jti, expMs, now) });
 * ```
 */
/** Single-use `jti`s: a synchronous answer in one process, a promise when a shared store answers. */
export interface JtiStore {
  /** Marks `jti` of `principal` used until `expMs` (+ tolerance); false when it was already used. */
  use(principal: string, jti: string, expMs: number, now: number): boolean | Promise<boolean>;
  prune(now: number): void;
}

export class JtiCache implements JtiStore {
  readonly capacity: number;
  readonly toleranceMs: number;
  readonly #forgetAt = new Map<string, number>();

  constructor(opts: { capacity: number; toleranceMs: number }) {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1) throw new TypeError('capacity must be a positive integer');
    this.capacity = opts.capacity;
    this.toleranceMs = opts.toleranceMs;
  }

  get size(): number {
    return this.#forgetAt.size;
  }

  /** Marks `jti` of `principal` used; false when it was already used and is still live. */
  use(principal: string, jti: string, expMs: number, now: number): boolean {
    const key = `${principal}\u0000${jti}`;
    const forgetAt = this.#forgetAt.get(key);
    if (forgetAt !== undefined && forgetAt > now) return false;
    if (forgetAt === undefined && this.#forgetAt.size >= this.capacity) {
      this.prune(now);
      if (this.#forgetAt.size >= this.capacity) {
        throw new ProtocolError('internal_error', 'jti cache is full');
      }
    }
    this.#forgetAt.set(key, expMs + this.toleranceMs);
    return true;
  }

  /** Forgets entries whose token can no longer be accepted anyway. */
  prune(now: number): void {
    for (const [key, forgetAt] of this.#forgetAt) if (forgetAt <= now) this.#forgetAt.delete(key);
  }
}
