import type { Clock } from '@latchkey/device-sdk/protocol';

/**
 * Counts refused authentications per key (a source address, or an enrollment token id) in fixed
 * one-minute windows (the same policy as the broker's `authFailureLimit`,
 * protocol.md §MQTT CONNECT). Once a key reaches the limit, requests that fail authentication
 * under it are refused at once (429) until the window ends. Only failures are counted: callers check the credential
 * first, so a valid one is never throttled (docs/operations.md §Throttles).
 * Memory is bounded: at most `capacity` keys per window; keys beyond it are not tracked.
 *
 * @example
 * ```ts
 * const byAddress = new FailureLimiter(30, Date.now);
 * if (!valid) { if (byAddress.blocked(ip)) throw new ApiError('rate_limited'); byAddress.fail(ip); }
 * ```
 */
export class FailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #capacity: number;
  readonly #clock: Clock;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor(limit: number, clock: Clock, options: { windowMs?: number; capacity?: number } = {}) {
    this.#limit = limit;
    this.#clock = clock;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#capacity = options.capacity ?? 100_000;
  }

  #roll(): void {
    const now = this.#clock();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#counts = new Map();
    }
  }

  /** True when `key` has used up its refusals for this window. */
  blocked(key: string): boolean {
    if (this.#limit === 0) return false;
    this.#roll();
    return (this.#counts.get(key) ?? 0) >= this.#limit;
  }

  fail(key: string): void {
    if (this.#limit === 0) return;
    this.#roll();
    const count = this.#counts.get(key);
    if (count === undefined && this.#counts.size >= this.#capacity) return;
    this.#counts.set(key, (count ?? 0) + 1);
  }
}

/** The HTTP API's separate failure budgets (docs/operations.md §Throttles). */
export interface HttpThrottles {
  /** wrong admin tokens, per source address */
  readonly admin: FailureLimiter;
  /** refused enrollment tokens, per source address */
  readonly enrollByAddress: FailureLimiter;
  /** refused enrollment tokens, per token id named in them */
  readonly enrollByToken: FailureLimiter;
}

export function httpThrottles(limit: number, clock: Clock): HttpThrottles {
  return {
    admin: new FailureLimiter(limit, clock),
    enrollByAddress: new FailureLimiter(limit, clock),
    enrollByToken: new FailureLimiter(limit, clock),
  };
}
