/** What authenticate needs of a throttle: the check (a local map lookup, never a network call) and the count. */
export interface ConnectThrottle {
  check(address: string | null | (() => string | null), now: number): 'open' | 'throttled' | 'throttled_first';
  recordFailure(address: string | null, now: number): void;
  prune(now: number): void;
}

/**
 * protocol.md §MQTT CONNECT: after `limit` refused connects from one source address within a
 * window (a minute), further attempts from it are refused with CONNACK 5 without their token
 * being checked, until the window that began with the first failure has passed. Throttled
 * attempts do not extend the window. `limit` 0 turns throttling off.
 * Memory is bounded: at most `capacity` addresses; when full, the oldest window is forgotten.
 *
 * @example
 * ```ts
 * const throttle = new FailureThrottle({ limit: 60, windowMs: 60_000, capacity: 100_000 });
 * if (throttle.check(addr, now) !== 'open') refuse(5); else if (failed) throttle.recordFailure(addr, now);
 * ```
 */
export class FailureThrottle implements ConnectThrottle {
  readonly limit: number;
  readonly windowMs: number;
  readonly capacity: number;
  /** Insertion order = window start order: pruning reads from the front. */
  readonly #windows = new Map<string, { start: number; count: number; noticed: boolean }>();

  constructor(opts: { limit: number; windowMs: number; capacity: number }) {
    if (!Number.isInteger(opts.limit) || opts.limit < 0) throw new TypeError('limit must be a non-negative integer');
    if (!(opts.windowMs > 0)) throw new TypeError('windowMs must be positive');
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1) throw new TypeError('capacity must be a positive integer');
    this.limit = opts.limit;
    this.windowMs = opts.windowMs;
    this.capacity = opts.capacity;
  }

  get size(): number {
    return this.#windows.size;
  }

  /**
   * `open`: check the token. `throttled`: refuse with 5. `throttled_first`: refuse with 5, and
   * this is the first throttled attempt of the window (the one worth an audit entry).
   */
  check(address: string | null | (() => string | null), now: number): 'open' | 'throttled' | 'throttled_first' {
    // nothing recorded: no need to even look up the address (a getter costs a system call)
    if (this.limit === 0 || this.#windows.size === 0) return 'open';
    const key = typeof address === 'function' ? address() : address;
    if (key === null) return 'open';
    const w = this.#windows.get(key);
    if (w === undefined) return 'open';
    if (now - w.start >= this.windowMs) {
      this.#windows.delete(key);
      return 'open';
    }
    if (w.count < this.limit) return 'open';
    if (w.noticed) return 'throttled';
    w.noticed = true;
    return 'throttled_first';
  }

  /** Counts one refused connect from `address`. */
  recordFailure(address: string | null, now: number): void {
    if (this.limit === 0 || address === null) return;
    const w = this.#windows.get(address);
    if (w !== undefined && now - w.start < this.windowMs) {
      w.count++;
      return;
    }
    this.#windows.delete(address);
    if (this.#windows.size >= this.capacity) this.prune(now);
    if (this.#windows.size >= this.capacity) {
      const oldest = this.#windows.keys().next();
      if (oldest.done !== true) this.#windows.delete(oldest.value);
    }
    this.#windows.set(address, { start: now, count: 1, noticed: false });
  }

  /**
   * Another node counted `limit` refusals for `address` (docs/operations.md §Throttles): throttle it
   * here too for the `remainingMs` left of that window.
   */
  block(address: string, now: number, remainingMs: number): void {
    if (this.limit === 0) return;
    const start = now - Math.max(0, this.windowMs - remainingMs);
    const w = this.#windows.get(address);
    if (w !== undefined && now - w.start < this.windowMs && w.count >= this.limit) return;
    this.#windows.delete(address);
    if (this.#windows.size >= this.capacity) this.prune(now);
    this.#windows.set(address, { start, count: this.limit, noticed: false });
  }

  /** Drops windows that have passed (they are at the front of the insertion order). */
  prune(now: number): void {
    for (const [address, w] of this.#windows) {
      if (now - w.start < this.windowMs) break;
      this.#windows.delete(address);
    }
  }
}
