import { DEFAULT_LIMITS } from '@latchkey/device-sdk/protocol';
import type { RegistryContext } from './context.ts';
import type { DeviceRow } from './device-rows.ts';
import { all, bool, value, type SqlText } from './plan.ts';

/** One device's live status, as the registry last recorded it. */
export interface DeviceStatusSnapshot {
  deviceId: string;
  blocked: boolean;
  connected: boolean;
  lastConnectedAt: number | null;
  lastDisconnectedAt: number | null;
  lastSeenAt: number | null;
  /** its last refused connect (internal reason), null when none */
  lastError: { code: string; at: number } | null;
}

/** Refused connects of one minute and one reason. */
export interface AuthFailureCount {
  /** epoch ms of the minute's start */
  minute: number;
  reason: string;
  count: number;
}

const MINUTE_MS = 60_000;

/**
 * How long after its window began a summary of repeated refusals can be written: the broker
 * writes it when the window (DEFAULT_LIMITS.authFailureWindowMs) ends, at its next flush.
 */
const SUMMARY_LAG_MS = 2 * DEFAULT_LIMITS.authFailureWindowMs;

/**
 * The refused connects of [?3, ?4) as the audit log holds them (issue 16: aggregated, written in
 * batches off the connect path, docs/operations.md §Retention): an entry is one refusal, or a
 * summary (`detail.repeated` more, by reason in `detail.reasons`, since `detail.since`) written
 * when its window ended. `at` is when a refusal was recorded, and for a summary when its window
 * began, so a flood is counted in the minutes it happened. Rows are found through
 * `audit_by_action_at` by the time they were written, [?1, ?2). The JSON functions differ between
 * the dialects; the logic does not.
 */
const REFUSALS: SqlText = {
  sqlite: `WITH refusals AS (
  SELECT target, detail, summary, CASE WHEN summary THEN json_extract(detail, '$.since') ELSE at END AS at FROM (
    SELECT target, detail, at, json_type(detail, '$.repeated') IS NOT NULL AS summary
    FROM audit_log WHERE action = 'auth.failure' AND at >= ? AND at < ?
  ) WHERE (CASE WHEN summary THEN json_extract(detail, '$.since') ELSE at END) >= ?
      AND (CASE WHEN summary THEN json_extract(detail, '$.since') ELSE at END) < ?
)`,
  postgres: `WITH refusals AS (
  SELECT target, detail, summary, CASE WHEN summary THEN (detail->>'since')::bigint ELSE at END AS at FROM (
    SELECT target, detail, at, (detail->'repeated') IS NOT NULL AS summary
    FROM audit_log WHERE action = 'auth.failure' AND at >= ? AND at < ?
  ) written WHERE (CASE WHEN summary THEN (detail->>'since')::bigint ELSE at END) >= ?
      AND (CASE WHEN summary THEN (detail->>'since')::bigint ELSE at END) < ?
)`,
};

/** Refused connects per minute and reason (see {@link FleetStats.authFailuresByMinute}). */
export const AUTH_FAILURES_BY_MINUTE_SQL: SqlText = {
  sqlite: `${REFUSALS.sqlite}
SELECT minute, reason, sum(n) AS count FROM (
  SELECT (at / ${MINUTE_MS}) * ${MINUTE_MS} AS minute, coalesce(json_extract(detail, '$.reason'), 'unknown') AS reason, 1 AS n
    FROM refusals WHERE NOT summary
  UNION ALL
  SELECT (at / ${MINUTE_MS}) * ${MINUTE_MS}, r.key, r.value
    FROM refusals, json_each(detail, '$.reasons') AS r WHERE summary
) GROUP BY minute, reason ORDER BY minute, reason`,
  postgres: `${REFUSALS.postgres}
SELECT minute, reason, sum(n)::bigint AS count FROM (
  SELECT (at / ${MINUTE_MS}) * ${MINUTE_MS} AS minute, coalesce(detail->>'reason', 'unknown') AS reason, 1::bigint AS n
    FROM refusals WHERE NOT summary
  UNION ALL
  SELECT (at / ${MINUTE_MS}) * ${MINUTE_MS}, r.key, r.value::bigint
    FROM refusals, json_each_text(detail->'reasons') AS r WHERE summary
) counted GROUP BY minute, reason ORDER BY minute, reason COLLATE "C"`,
};

/** The most refused principals (see {@link FleetStats.topRefused}). */
export const TOP_REFUSED_SQL: SqlText = {
  sqlite: `${REFUSALS.sqlite}
SELECT target AS principal, sum(CASE WHEN summary THEN json_extract(detail, '$.repeated') ELSE 1 END) AS count
FROM refusals GROUP BY target ORDER BY count DESC, target IS NULL, target LIMIT ?`,
  postgres: `${REFUSALS.postgres}
SELECT target AS principal, sum(CASE WHEN summary THEN (detail->>'repeated')::bigint ELSE 1 END)::bigint AS count
FROM refusals GROUP BY target ORDER BY count DESC, target IS NULL, target LIMIT ?`,
};

const STATUS_OF: SqlText = (() => {
  const q = (ids: string) => `SELECT d.id, d.blocked, s.sessions, s.last_connected_at, s.last_disconnected_at, s.last_seen_at, s.last_error_code, s.last_error_at
     FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
     WHERE d.id IN (${ids}) ORDER BY d.id`;
  return { sqlite: q('SELECT value FROM json_each(?)'), postgres: q('SELECT json_array_elements_text(?::json)') };
})();
const COUNT_CONNECTED: SqlText = { sqlite: 'SELECT count(*) AS n FROM device_status WHERE sessions > 0', postgres: 'SELECT count(*) AS n FROM device_status WHERE sessions > 0' };
const COUNT_DEVICES: SqlText = { sqlite: 'SELECT count(*) AS n FROM devices', postgres: 'SELECT count(*) AS n FROM devices' };

/**
 * Read-only figures about the fleet for the operators' console and the event stream:
 * connected count, a batch of device statuses, and refused connects by minute and reason
 * (from the audit log's `auth.failure` entries, through the `audit_by_action_at` index, summaries
 * of repeated refusals summed with their counts).
 */
export class FleetStats {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** Devices with at least one live session (as of the broker's last status flush). */
  async countConnected(): Promise<number> {
    return Number(await this.#ctx.read(() => value<number>(COUNT_CONNECTED)));
  }

  /** Every registered device. */
  async countDevices(): Promise<number> {
    return Number(await this.#ctx.read(() => value<number>(COUNT_DEVICES)));
  }

  /** The status of each known device among `ids` (unknown ids are left out), in id order. */
  async statusOf(ids: readonly string[]): Promise<DeviceStatusSnapshot[]> {
    if (ids.length === 0) return [];
    const rows = await this.#ctx.read(() =>
      all<Pick<DeviceRow, 'id' | 'blocked' | 'sessions' | 'last_connected_at' | 'last_disconnected_at' | 'last_seen_at' | 'last_error_code' | 'last_error_at'>>(
        STATUS_OF,
        JSON.stringify(ids),
      ),
    );
    return rows.map((r) => ({
      deviceId: r.id,
      blocked: bool(r.blocked),
      connected: (r.sessions ?? 0) > 0,
      lastConnectedAt: r.last_connected_at,
      lastDisconnectedAt: r.last_disconnected_at,
      lastSeenAt: r.last_seen_at,
      lastError: r.last_error_code === null || r.last_error_at === null ? null : { code: r.last_error_code, at: r.last_error_at },
    }));
  }

  /**
   * Refused connects per minute and reason in [since, until), oldest first, from the audit log's
   * `auth.failure` entries (see {@link REFUSALS}): one refusal counts 1 in the minute it was
   * recorded; a summary of repeated refusals counts each of its `detail.reasons` in the minute
   * its window began (`detail.since`).
   */
  async authFailuresByMinute(since: number, until: number): Promise<AuthFailureCount[]> {
    const rows = await this.#ctx.read(() => all<{ minute: number; reason: string; count: number }>(AUTH_FAILURES_BY_MINUTE_SQL, since, until + SUMMARY_LAG_MS, since, until));
    return rows.map((r) => ({ minute: Number(r.minute), reason: r.reason, count: Number(r.count) }));
  }

  /**
   * The principals (device ids, `svc:{name}`) refused most often in [since, until), summaries
   * counted with their `detail.repeated`. null collects unparsable client ids and summaries over
   * several principals (one address trying many ids).
   */
  async topRefused(since: number, until: number, limit: number): Promise<Array<{ principal: string | null; count: number }>> {
    const rows = await this.#ctx.read(() => all<{ principal: string | null; count: number }>(TOP_REFUSED_SQL, since, until + SUMMARY_LAG_MS, since, until, limit));
    return rows.map((r) => ({ principal: r.principal, count: Number(r.count) }));
  }
}
