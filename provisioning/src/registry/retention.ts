import type { Clock } from '@latchkey/device-sdk/protocol';
import type { RegistryContext } from './context.ts';
import { run, sql, value } from './plan.ts';
import { pruneOutbox } from './postgres-feed.ts';

/** How much history the registry keeps (docs/operations.md §Retention). */
export interface RetentionPolicy {
  /** audit entries older than this are deleted, ms */
  readonly auditRetentionMs: number;
  /** at most this many refused-connect records (`auth.failure`) are kept; the oldest go first */
  readonly maxRefusals: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The defaults: 30 days of audit history, at most 100,000 refused-connect records. */
export const DEFAULT_RETENTION_POLICY: RetentionPolicy = Object.freeze({ auditRetentionMs: 30 * DAY_MS, maxRefusals: 100_000 });

/** The bounds of a policy: keep an hour to ten years of history, and 1,000 to 100,000,000 refusals. */
const AUDIT_RETENTION_MS = { min: HOUR_MS, max: 3650 * DAY_MS };
const MAX_REFUSALS = { min: 1000, max: 100_000_000 };

/**
 * Checks a retention policy (the only check of it: `latchkey up` hands its `--audit-*` flags here);
 * every problem is named by its setting, a message reading after the name.
 *
 * @example
 * ```ts
 * checkRetentionPolicy({ auditRetentionMs: 60_000 }) // { ok: false, problems: [{ setting: 'auditRetentionMs', … }] }
 * ```
 */
export function checkRetentionPolicy(
  input: Partial<RetentionPolicy>,
): { ok: true; policy: RetentionPolicy } | { ok: false; problems: { setting: keyof RetentionPolicy; message: string }[] } {
  const p = { ...DEFAULT_RETENTION_POLICY, ...input };
  const within = (v: unknown, r: { min: number; max: number }) => Number.isSafeInteger(v) && (v as number) >= r.min && (v as number) <= r.max;
  const problems: { setting: keyof RetentionPolicy; message: string }[] = [];
  if (!within(p.auditRetentionMs, AUDIT_RETENTION_MS)) problems.push({ setting: 'auditRetentionMs', message: 'must be a duration of 1h..3650d, e.g. 30d, 12h, 3600s' });
  if (!within(p.maxRefusals, MAX_REFUSALS)) problems.push({ setting: 'maxRefusals', message: `must be an integer ${MAX_REFUSALS.min}..${MAX_REFUSALS.max}` });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, policy: Object.freeze(p) };
}

/** What one pruning pass deleted. */
export interface PruneCounts {
  audit: number;
  refusals: number;
  enrollmentTokens: number;
  /** PostgreSQL: change-feed outbox rows past `OUTBOX_RETENTION_MS` (always 0 on SQLite) */
  changes: number;
}

/**
 * How long PostgreSQL's change-feed outbox keeps a change: a node whose feed was down longer
 * resynchronizes in full instead of replaying (docs/operations.md §Change feed).
 */
export const OUTBOX_RETENTION_MS = 3_600_000;

const Q = {
  audit: sql`DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)`,
  refusalCount: sql`SELECT count(*) AS n FROM audit_log WHERE action = 'auth.failure'`,
  refusals: sql`DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE action = 'auth.failure' ORDER BY seq LIMIT ?)`,
  tokens: sql`DELETE FROM enrollment_tokens WHERE id IN (SELECT id FROM enrollment_tokens WHERE expires_at <= ? LIMIT ?)`,
};

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
  pruneStep(policy: RetentionPolicy, now: number, batch = PRUNE_BATCH): Promise<PruneCounts> {
    return this.#ctx.write(function* (tx) {
      const audit = yield* run(Q.audit, now - policy.auditRetentionMs, batch);
      const stored = (yield* value<number>(Q.refusalCount)) ?? 0;
      const excess = Math.min(Math.max(stored - policy.maxRefusals, 0), batch);
      const refusals = excess === 0 ? 0 : yield* run(Q.refusals, excess);
      const enrollmentTokens = yield* run(Q.tokens, now, batch);
      if (enrollmentTokens > 0) {
        yield* tx.audit({ actor: 'retention', action: 'enrollment_token.purge', target: null, detail: { count: enrollmentTokens } });
      }
      const changes = tx.dialect === 'postgres' ? yield* pruneOutbox(now - OUTBOX_RETENTION_MS, batch) : 0;
      return { audit, refusals, enrollmentTokens, changes };
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
  const checked = checkRetentionPolicy(o.policy);
  if (!checked.ok) throw new TypeError(`invalid retention policy: ${checked.problems.map((p) => `${p.setting} ${p.message}`).join('; ')}`);
  let stopped = false;
  let running: Promise<PruneCounts> | null = null;

  async function pass(): Promise<PruneCounts> {
    const total: PruneCounts = { audit: 0, refusals: 0, enrollmentTokens: 0, changes: 0 };
    for (;;) {
      if (stopped) break;
      const step = await store.pruneStep(o.policy, o.clock());
      total.audit += step.audit;
      total.refusals += step.refusals;
      total.enrollmentTokens += step.enrollmentTokens;
      total.changes += step.changes;
      const more = step.audit === PRUNE_BATCH || step.refusals === PRUNE_BATCH || step.enrollmentTokens === PRUNE_BATCH || step.changes === PRUNE_BATCH;
      if (!more) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total.audit + total.refusals + total.enrollmentTokens + total.changes > 0) o.onPruned?.(total);
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
