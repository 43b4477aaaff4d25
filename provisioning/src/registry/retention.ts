import type { Clock } from '@latchkey/device-sdk/protocol';
import type { RegistryContext } from './context.ts';

/** How much history the registry keeps (docs/operations.md §Retention). */
export interface RetentionPolicy {
  /** audit entries older than this are deleted, ms */
  readonly auditRetentionMs: number;
  /** at most this many refused-connect records (`auth.failure`) are kept; the oldest go first */
  readonly maxRefusals: number;
}

/** What one pruning pass deleted. */
export interface PruneCounts {
  audit: number;
  refusals: number;
  enrollmentTokens: number;
}

/** Rows deleted per statement: each step is its own short write, so requests interleave. */
export const PRUNE_BATCH = 5_000;

/**
 * Bounded history: audit entries past their retention, refused-connect records over the cap (admin
 * and enrollment entries are never removed by the cap, only by age, so a flood of refusals cannot
 * push them out), and enrollment tokens that have expired (they can never enroll again).
 */
export class RetentionStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /**
   * One bounded step of pruning as of `now` (epoch ms): deletes at most `batch` rows of each kind.
   * Returns what it deleted; call again while anything was (see {@link startRetention}).
   */
  pruneStep(policy: RetentionPolicy, now: number, batch = PRUNE_BATCH): PruneCounts {
    return this.#ctx.write(() => {
      const audit = this.#ctx
        .stmt('DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)')
        .run(now - policy.auditRetentionMs, batch).changes;
      const stored = this.#ctx.stmt("SELECT count(*) FROM audit_log WHERE action = 'auth.failure'").pluck().get() as number;
      const excess = Math.min(Math.max(stored - policy.maxRefusals, 0), batch);
      const refusals =
        excess === 0
          ? 0
          : this.#ctx
              .stmt("DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE action = 'auth.failure' ORDER BY seq LIMIT ?)")
              .run(excess).changes;
      const enrollmentTokens = this.#ctx
        .stmt('DELETE FROM enrollment_tokens WHERE id IN (SELECT id FROM enrollment_tokens WHERE expires_at <= ? LIMIT ?)')
        .run(now, batch).changes;
      if (enrollmentTokens > 0) {
        this.#ctx.audit({ actor: 'retention', action: 'enrollment_token.purge', target: null, detail: { count: enrollmentTokens } });
      }
      return { audit, refusals, enrollmentTokens };
    });
  }
}

export interface RetentionTask {
  /** Prunes until nothing is left to prune (yielding to the event loop between steps); resolves with the totals. */
  runOnce(): Promise<PruneCounts>;
  /** Stops the timer; a pass in progress ends after its current step. */
  stop(): void;
}

/**
 * Prunes in the background every `intervalMs` (and once at start), with the injected clock.
 * Errors are reported, never thrown into the timer.
 *
 * @example
 * ```ts
 * const retention = startRetention(registry.retention, { clock: Date.now, policy: { auditRetentionMs: 30 * 86_400_000, maxRefusals: 100_000 }, intervalMs: 60_000, onError });
 * retention.stop();
 * ```
 */
export function startRetention(
  store: RetentionStore,
  o: { clock: Clock; policy: RetentionPolicy; intervalMs: number; onError: (err: unknown) => void; onPruned?: (counts: PruneCounts) => void },
): RetentionTask {
  if (!(o.policy.auditRetentionMs > 0) || !Number.isSafeInteger(o.policy.maxRefusals) || o.policy.maxRefusals < 0) {
    throw new TypeError('policy needs auditRetentionMs > 0 and maxRefusals >= 0');
  }
  let stopped = false;
  let running: Promise<PruneCounts> | null = null;

  async function pass(): Promise<PruneCounts> {
    const total: PruneCounts = { audit: 0, refusals: 0, enrollmentTokens: 0 };
    for (;;) {
      if (stopped) break;
      const step = store.pruneStep(o.policy, o.clock());
      total.audit += step.audit;
      total.refusals += step.refusals;
      total.enrollmentTokens += step.enrollmentTokens;
      const more = step.audit === PRUNE_BATCH || step.refusals === PRUNE_BATCH || step.enrollmentTokens === PRUNE_BATCH;
      if (!more) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total.audit + total.refusals + total.enrollmentTokens > 0) o.onPruned?.(total);
    return total;
  }

  function runOnce(): Promise<PruneCounts> {
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  }

  const tick = () => {
    if (!stopped) runOnce().catch(o.onError);
  };
  const timer = setInterval(tick, o.intervalMs);
  timer.unref();
  setImmediate(tick);
  return {
    runOnce,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
