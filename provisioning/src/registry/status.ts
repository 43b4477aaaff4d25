import { parsePrincipal } from '@latchkey/device-sdk/protocol';
import type { RegistryContext } from './context.ts';
import { D, run, same, sql, type SqlText } from './plan.ts';
import type { AuthFailure, JsonObject } from './types.ts';

/** Upserts a status row for a known device only (unknown ids are ignored, never an error). */
function upsert(columns: string, set: SqlText | string): SqlText {
  const values = columns.split(',').map(() => '?').join(', ');
  return sql`INSERT INTO device_status (device_id, ${same(columns)}) SELECT id, ${same(values)} FROM devices WHERE id = ?
    ON CONFLICT (device_id) DO UPDATE SET ${typeof set === 'string' ? same(set) : set}`;
}

const Q = {
  connected: upsert(
    'sessions, last_connected_at, last_seen_at',
    'sessions = device_status.sessions + 1, last_connected_at = excluded.last_connected_at, last_seen_at = excluded.last_seen_at',
  ),
  disconnected: upsert(
    'sessions, last_disconnected_at',
    sql`sessions = ${D.greatest}(device_status.sessions - 1, 0), last_disconnected_at = excluded.last_disconnected_at`,
  ),
  seen: upsert('last_seen_at', sql`last_seen_at = ${D.greatest}(coalesce(device_status.last_seen_at, 0), excluded.last_seen_at)`),
  lastError: upsert('last_error_code, last_error_at', 'last_error_code = excluded.last_error_code, last_error_at = excluded.last_error_at'),
  /** Applies one device's folded events; a new row starts from 0 sessions (see sessionEvents). */
  folded: upsert(
    'sessions, last_connected_at, last_disconnected_at, last_seen_at',
    sql`sessions = ${D.greatest}(device_status.sessions + ?, ?),
        last_connected_at = coalesce(excluded.last_connected_at, device_status.last_connected_at),
        last_disconnected_at = coalesce(excluded.last_disconnected_at, device_status.last_disconnected_at),
        last_seen_at = coalesce(excluded.last_seen_at, device_status.last_seen_at)`,
  ),
  reset: sql`UPDATE device_status SET sessions = 0 WHERE sessions <> 0`,
};

/** A device session opened or closed at `at` (epoch ms); same shape as the broker port's `SessionEvent`. */
export interface SessionEvent {
  deviceId: string;
  type: 'connected' | 'disconnected';
  at: number;
}

/** A device's session events of one batch as s ↦ max(s + add, floor), plus its latest times. */
interface FoldedEvents {
  add: number;
  floor: number;
  connectedAt: number | null;
  disconnectedAt: number | null;
}

/** Device status (docs/api.md device resource `status`), written by the broker. */
export class StatusStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** A session opened. `sessions` counts live sessions, so a takeover's late disconnect is harmless. */
  async connected(deviceId: string, at: number): Promise<void> {
    await this.#ctx.write(() => run(Q.connected, 1, at, at, deviceId));
  }

  async disconnected(deviceId: string, at: number): Promise<void> {
    await this.#ctx.write(() => run(Q.disconnected, 0, at, deviceId));
  }

  /**
   * Many session events, in order, in ONE transaction and one statement per device: the same
   * effect as `connected` / `disconnected` called for each (session counting, `lastConnectedAt`,
   * `lastSeenAt`, `lastDisconnectedAt`; unknown or deleted devices ignored).
   *
   * Folding a device's events: `connected` is s ↦ s + 1 and `disconnected` is s ↦ max(s − 1, 0);
   * both have the form s ↦ max(s + add, floor), and that form is closed under composition
   * (max(max(s + a, b) + c, d) = max(s + a + c, max(b + c, d))), so any sequence is one pair.
   */
  async sessionEvents(events: ReadonlyArray<SessionEvent>): Promise<void> {
    if (events.length === 0) return;
    const folded = new Map<string, FoldedEvents>();
    for (const e of events) {
      let f = folded.get(e.deviceId);
      if (f === undefined) {
        f = { add: 0, floor: 0, connectedAt: null, disconnectedAt: null }; // identity: sessions >= 0
        folded.set(e.deviceId, f);
      }
      if (e.type === 'connected') {
        f.add++;
        f.floor++;
        f.connectedAt = e.at;
      } else {
        f.add--;
        f.floor = Math.max(f.floor - 1, 0);
        f.disconnectedAt = e.at;
      }
    }
    await this.#ctx.write(function* () {
      for (const [deviceId, f] of folded) {
        yield* run(Q.folded, Math.max(f.add, f.floor), f.connectedAt, f.disconnectedAt, f.connectedAt, deviceId, f.add, f.floor);
      }
    });
  }

  /** Batched `lastSeenAt` updates in one transaction; never moves a time backwards. */
  async seen(entries: ReadonlyArray<readonly [string, number]>): Promise<void> {
    if (entries.length === 0) return;
    await this.#ctx.write(function* () {
      for (const [deviceId, at] of entries) yield* run(Q.seen, at, deviceId);
    });
  }

  /** protocol.md §MQTT CONNECT: the internal reason goes to status and the audit log, never to the client. */
  async authFailure(f: AuthFailure): Promise<void> {
    await this.#ctx.write(function* (tx) {
      if (parsePrincipal(f.principal)?.kind === 'device') yield* run(Q.lastError, f.reason, f.at, f.principal as string);
      const detail: JsonObject = { reason: f.reason, clientId: f.clientId.slice(0, 256), remoteAddress: f.remoteAddress };
      if (f.repeated !== undefined) {
        detail.repeated = f.repeated.count;
        detail.reasons = { ...f.repeated.reasons };
        detail.since = f.repeated.since;
      }
      yield* tx.audit({ actor: 'broker', action: 'auth.failure', target: f.principal, detail });
    });
  }

  /** Batched `lastError` of refused connects (device ids only; unknown ids are ignored). */
  async lastErrors(entries: ReadonlyArray<readonly [string, string, number]>): Promise<void> {
    if (entries.length === 0) return;
    await this.#ctx.write(function* () {
      for (const [deviceId, code, at] of entries) yield* run(Q.lastError, code, at, deviceId);
    });
  }

  /** No session survives a restart: the registry's owner calls this at start. */
  async resetSessions(): Promise<void> {
    await this.#ctx.write(() => run(Q.reset));
  }
}
