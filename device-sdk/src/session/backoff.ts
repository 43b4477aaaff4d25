/**
 * Reconnect delays: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff and Jitter"): delay = random(0, min(maxMs, initialMs · 2^attempt)). Full jitter spreads
 * a fleet that lost its broker at the same instant over the whole window, so it does not return
 * in lock-step.
 */

export interface BackoffOptions {
  /** Upper bound of the first delay, ms. Default 500. */
  initialMs?: number;
  /** Cap of every delay, ms. Default 30000. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 30_000 });

/** Validates backoff options once (caller misuse is a TypeError). */
export function resolveBackoff(o: BackoffOptions | undefined): Required<BackoffOptions> {
  const initialMs = o?.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const maxMs = o?.maxMs ?? DEFAULT_BACKOFF.maxMs;
  if (!Number.isFinite(initialMs) || initialMs <= 0) throw new TypeError('backoff.initialMs must be a positive number');
  if (!Number.isFinite(maxMs) || maxMs < initialMs) throw new TypeError('backoff.maxMs must be a number ≥ backoff.initialMs');
  return { initialMs, maxMs };
}

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry).
 *
 * @example
 * ```ts
 * backoffDelay(3, { initialMs: 500, maxMs: 30_000 }) // somewhere in [0, 4000)
 * ```
 */
export function backoffDelay(attempt: number, o: Required<BackoffOptions>, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
