import type { RegistryContext } from './context.ts';
import type { AuthFailure } from './types.ts';

/** Upserts a status row for a known device only (unknown ids are ignored, never an error). */
const UPSERT = (set: string, values: string): string => `
  INSERT INTO device_status (device_id, ${values}) SELECT id, ${values.split(',').map(() => '?').join(', ')} FROM devices WHERE id = ?
  ON CONFLICT(device_id) DO UPDATE SET ${set}`;

/** A device session opened or closed at `at` (epoch ms); same shape as the broker port's `SessionEvent`. */
export interface SessionEvent {
  deviceId: string;
  type: 'connected' | 'disconnected';
  at: number;
}

/** Device status (http-api.md device resource `status`), written by the broker. */
export class StatusStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** A session opened. `sessions` counts live sessions, so a takeover's late disconnect is harmless. */
  connected(deviceId: string, at: number): void {
    this.#ctx.write(() => {
      this.#ctx
        .stmt(UPSERT('sessions = sessions + 1, last_connected_at = excluded.last_connected_at, last_seen_at = excluded.last_seen_at', 'sessions, last_connected_at, last_seen_at'))
        .run(1, at, at, deviceId);
    });
  }

  disconnected(deviceId: string, at: number): void {
    this.#ctx.write(() => {
      this.#ctx
        .stmt(UPSERT('sessions = max(sessions - 1, 0), last_disconnected_at = excluded.last_disconnected_at', 'sessions, last_disconnected_at'))
        .run(0, at, deviceId);
    });
  }

  /**
   * Many session events, in order, in ONE transaction: the same effect as `connected` /
   * `disconnected` called for each (session counting, `lastConnectedAt`, `lastDisconnectedAt`;
   * unknown or deleted devices ignored), at the cost of one commit instead of one per event.
   */
  sessionEvents(events: ReadonlyArray<SessionEvent>): void {
    if (events.length === 0) return;
    this.#ctx.write(() => {
      for (const e of events) {
        if (e.type === 'connected') this.connected(e.deviceId, e.at);
        else this.disconnected(e.deviceId, e.at);
      }
    });
  }

  /** Batched `lastSeenAt` updates in one transaction; never moves a time backwards. */
  seen(entries: ReadonlyArray<readonly [string, number]>): void {
    if (entries.length === 0) return;
    this.#ctx.write(() => {
      const stmt = this.#ctx.stmt(UPSERT('last_seen_at = max(coalesce(last_seen_at, 0), excluded.last_seen_at)', 'last_seen_at'));
      for (const [deviceId, at] of entries) stmt.run(at, deviceId);
    });
  }

  /** protocol.md §MQTT CONNECT: the internal reason goes to status and the audit log, never to the client. */
  authFailure(f: AuthFailure): void {
    this.#ctx.write(() => {
      if (f.principal !== null && !f.principal.startsWith('svc:')) {
        this.#ctx
          .stmt(UPSERT('last_error_code = excluded.last_error_code, last_error_at = excluded.last_error_at', 'last_error_code, last_error_at'))
          .run(f.reason, f.at, f.principal);
      }
      this.#ctx.audit({
        actor: 'broker',
        action: 'auth.failure',
        target: f.principal,
        detail: { reason: f.reason, clientId: f.clientId.slice(0, 256), remoteAddress: f.remoteAddress },
      });
    });
  }

  /** No session survives a restart: the registry's owner calls this at start. */
  resetSessions(): void {
    this.#ctx.write(() => {
      this.#ctx.stmt('UPDATE device_status SET sessions = 0 WHERE sessions <> 0').run();
    });
  }
}
