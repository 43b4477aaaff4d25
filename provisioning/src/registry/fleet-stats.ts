import type { RegistryContext } from './context.ts';

/** One device's live status, as the registry last recorded it. */
export interface DeviceStatusSnapshot {
  deviceId: string;
  blocked: boolean;
  connected: boolean;
  lastConnectedAt: number | null;
  lastDisconnectedAt: number | null;
  lastSeenAt: number | null;
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
 * Read-only figures about the fleet for the operators' console and the event stream:
 * connected count, a batch of device statuses, and refused connects by minute and reason
 * (from the audit log's `auth.failure` entries, through the `audit_by_action_at` index).
 */
export class FleetStats {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** Devices with at least one live session (as of the broker's last status flush). */
  countConnected(): number {
    return this.#ctx.read(() => this.#ctx.stmt('SELECT count(*) FROM device_status WHERE sessions > 0').pluck().get() as number);
  }

  /** Every registered device. */
  countDevices(): number {
    return this.#ctx.read(() => this.#ctx.stmt('SELECT count(*) FROM devices').pluck().get() as number);
  }

  /** The status of each known device among `ids` (unknown ids are left out), in id order. */
  statusOf(ids: readonly string[]): DeviceStatusSnapshot[] {
    if (ids.length === 0) return [];
    return this.#ctx.read(() => {
      const rows = this.#ctx
        .stmt(
          `SELECT d.id, d.blocked, s.sessions, s.last_connected_at, s.last_disconnected_at, s.last_seen_at
           FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
           WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.id`,
        )
        .all(JSON.stringify(ids)) as Array<{
        id: string;
        blocked: number;
        sessions: number | null;
        last_connected_at: number | null;
        last_disconnected_at: number | null;
        last_seen_at: number | null;
      }>;
      return rows.map((r) => ({
        deviceId: r.id,
        blocked: r.blocked === 1,
        connected: (r.sessions ?? 0) > 0,
        lastConnectedAt: r.last_connected_at,
        lastDisconnectedAt: r.last_disconnected_at,
        lastSeenAt: r.last_seen_at,
      }));
    });
  }

  /** Refused connects per minute and reason in [since, until), oldest first. */
  authFailuresByMinute(since: number, until: number): AuthFailureCount[] {
    return this.#ctx.read(() =>
      (
        this.#ctx
          .stmt(
            `SELECT (at / ${MINUTE_MS}) * ${MINUTE_MS} AS minute, json_extract(detail, '$.reason') AS reason, count(*) AS count
             FROM audit_log WHERE action = 'auth.failure' AND at >= ? AND at < ?
             GROUP BY minute, reason ORDER BY minute, reason`,
          )
          .all(since, until) as Array<{ minute: number; reason: string | null; count: number }>
      ).map((r) => ({ minute: r.minute, reason: r.reason ?? 'unknown', count: r.count })),
    );
  }

  /** The principals (device ids, `svc:{name}`) refused most often in [since, until); unparsable client ids count as null. */
  topRefused(since: number, until: number, limit: number): Array<{ principal: string | null; count: number }> {
    return this.#ctx.read(
      () =>
        this.#ctx
          .stmt(
            `SELECT target AS principal, count(*) AS count FROM audit_log
             WHERE action = 'auth.failure' AND at >= ? AND at < ?
             GROUP BY target ORDER BY count DESC, target IS NULL, target LIMIT ?`,
          )
          .all(since, until, limit) as Array<{ principal: string | null; count: number }>,
    );
  }
}
