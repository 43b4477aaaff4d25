import type { ConnectThrottle, FailureThrottle } from '../auth/failure-throttle.ts';
import type { JtiStore } from '../auth/jti-cache.ts';
import { LK_KEYS } from './redis-keys.ts';
import type { ScriptedRedis } from './scripts.ts';

/**
 * protocol.md §The connect token with `requireJti`, across nodes: a `jti` is used once in the whole
 * cluster (`SET NX` with the token's expiry plus the clock tolerance, so the key goes when the token
 * could no longer be accepted anyway). Redis unreachable: the connect fails (CONNACK 3), never
 * accepted unchecked.
 *
 * @example
 * ```ts
 * const jtis = new RedisJtiStore(db, 300_000);
 * await jtis.use('thermo-1', 'a1b2', exp * 1000, Date.now()); // true once, false after
 * ```
 */
export class RedisJtiStore implements JtiStore {
  readonly #db: ScriptedRedis;
  readonly #toleranceMs: number;

  constructor(db: ScriptedRedis, toleranceMs: number) {
    this.#db = db;
    this.#toleranceMs = toleranceMs;
  }

  async use(principal: string, jti: string, expMs: number, now: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expMs + this.#toleranceMs - now));
    return (await this.#db.set(LK_KEYS.jti(principal, jti), '1', 'PX', ttl, 'NX')) === 'OK';
  }

  prune(): void {
    // Redis expires the keys
  }
}

/** What the nodes tell each other when an address reaches the limit. */
export interface ThrottledNotice {
  address: string;
  remainingMs: number;
}

/**
 * protocol.md §MQTT CONNECT's per-address throttle across nodes. The check stays this node's map
 * lookup (no network call on any connect); a refusal, which is already the slow path, also counts
 * in Redis (`lkAuthFailure`: one counter per address, its window starting with the first refusal),
 * and the refusal that reaches the limit tells every node (`announce`), which then throttles the
 * address for what is left of that window. So refusals spread over nodes add up.
 *
 * @example
 * ```ts
 * const throttle = new ClusterThrottle(local, db, (n) => mq.emit(notice(n)), log);
 * mq.on(LK_TOPICS.throttled, (p) => throttle.onNotice(JSON.parse(p.payload), Date.now()));
 * ```
 */
export class ClusterThrottle implements ConnectThrottle {
  readonly #local: FailureThrottle;
  readonly #db: ScriptedRedis;
  readonly #announce: (notice: ThrottledNotice) => void;
  readonly #onError: (err: unknown) => void;

  constructor(local: FailureThrottle, db: ScriptedRedis, announce: (notice: ThrottledNotice) => void, onError: (err: unknown) => void) {
    this.#local = local;
    this.#db = db;
    this.#announce = announce;
    this.#onError = onError;
  }

  check(address: string | null | (() => string | null), now: number): 'open' | 'throttled' | 'throttled_first' {
    return this.#local.check(address, now);
  }

  recordFailure(address: string | null, now: number): void {
    this.#local.recordFailure(address, now);
    const limit = this.#local.limit;
    if (limit === 0 || address === null) return;
    this.#db
      .lkAuthFailure(LK_KEYS.authFailures(address), this.#local.windowMs)
      .then((result) => {
        const [count, pttl] = result as [number, number];
        if (count === limit) this.#announce({ address, remainingMs: pttl > 0 ? pttl : this.#local.windowMs });
      })
      .catch(this.#onError);
  }

  /** Another node (or this one) announced an address at the limit. */
  onNotice(notice: ThrottledNotice, now: number): void {
    if (typeof notice?.address !== 'string' || !(notice.remainingMs > 0)) return;
    this.#local.block(notice.address, now, Math.min(notice.remainingMs, this.#local.windowMs));
  }

  prune(now: number): void {
    this.#local.prune(now);
  }
}
