import type { Clock } from '../protocol/index.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { refreshDueAt, refreshShare, type HeldToken } from '../token/token-source.ts';

/**
 * When the session reconnects: after a failure (backoff with full jitter, growing with each
 * failure in a row) and before its token expires (protocol.md §MQTT CONNECT: the broker ends
 * the session at `exp`, so reconnect at 80–90% of the token's lifetime, the share drawn once per
 * session so a fleet does not refresh in lock-step). At most one retry and one refresh timer.
 *
 * @example
 * ```ts
 * const schedule = new ReconnectSchedule({ backoff, random: Math.random, clock: Date.now });
 * schedule.retry(() => void attempt());             // after a failure
 * schedule.refreshBefore(held, () => void refresh()); // once online
 * schedule.clear();                                  // on close
 * ```
 */
export class ReconnectSchedule {
  readonly #o: { backoff: Required<BackoffOptions>; random: () => number; clock: Clock };
  readonly #refreshShare: number;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #refreshTimer: NodeJS.Timeout | null = null;

  constructor(o: { backoff: Required<BackoffOptions>; random: () => number; clock: Clock }) {
    this.#o = o;
    this.#refreshShare = refreshShare(o.random);
  }

  /** Runs `attempt` after the backoff delay for the next failure in a row. */
  retry(attempt: () => void): void {
    const delay = backoffDelay(this.#failures++, this.#o.backoff, this.#o.random);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      attempt();
    }, delay);
  }

  /** A connection was accepted: the next failure starts the backoff from the beginning. */
  resetFailures(): void {
    this.#failures = 0;
  }

  /** Runs `refresh` when the session using `token` is due to reconnect with a fresh one. */
  refreshBefore(token: HeldToken, refresh: () => void): void {
    const due = refreshDueAt(token, this.#refreshShare);
    this.#refreshIn(Math.max(0, due - this.#o.clock()), refresh);
  }

  /** A refresh could not get a fresh token: keep the session and try again after the first backoff step. */
  refreshAgain(refresh: () => void): void {
    this.#refreshIn(this.#o.backoff.initialMs, refresh);
  }

  /** Cancels both timers. */
  clear(): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    if (this.#refreshTimer !== null) clearTimeout(this.#refreshTimer);
    this.#retryTimer = null;
    this.#refreshTimer = null;
  }

  #refreshIn(ms: number, refresh: () => void): void {
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = null;
      refresh();
    }, ms);
  }
}
