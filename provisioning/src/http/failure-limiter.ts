import type { Clock } from '@latchkey/device-sdk/protocol';

/**
 * Counts refused authentications per source address in fixed one-minute windows (the same
 * policy as the broker's `authFailureLimit`, protocol.md §MQTT CONNECT). Once an address
 * reaches the limit, its further attempts are refused at once (429) until the window ends.
 */
export class FailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor(limit: number, clock: Clock, windowMs = 60_000) {
    this.#limit = limit;
    this.#clock = clock;
    this.#windowMs = windowMs;
  }

  #roll(): void {
    const now = this.#clock();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#counts = new Map();
    }
  }

  /** True when `address` has used up its refusals for this window. */
  blocked(address: string): boolean {
    if (this.#limit === 0) return false;
    this.#roll();
    return (this.#counts.get(address) ?? 0) >= this.#limit;
  }

  fail(address: string): void {
    if (this.#limit === 0) return;
    this.#roll();
    this.#counts.set(address, (this.#counts.get(address) ?? 0) + 1);
  }
}
