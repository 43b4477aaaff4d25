import { jsonDepthExceeds } from '../json-depth.ts';
import type { RegistryContext } from './context.ts';
import { deviceExists } from './devices.ts';
import { RegistryError } from './errors.ts';
import { all, get, json, run, sql, value } from './plan.ts';
import type { JsonObject } from './types.ts';

const Q = {
  version: sql`SELECT version FROM device_config WHERE device_id = ?`,
  // a new version: a Cloud IoT Core config's raw bytes (null: the JSON's text), and no device ack yet
  upsert: sql`INSERT INTO device_config (device_id, version, config, updated_at, data) VALUES (?, ?, ?, ?, ?)
              ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, config = excluded.config, updated_at = excluded.updated_at,
                data = excluded.data, device_ack_at = NULL`,
  config: sql`SELECT version, config, updated_at FROM device_config WHERE device_id = ?`,
  state: sql`SELECT state, reported_at FROM device_state WHERE device_id = ?`,
  // keyset pages by device id (both dialects sort ids byte by byte: PostgreSQL's columns are COLLATE "C")
  allFirst: sql`SELECT device_id, version, config FROM device_config ORDER BY device_id LIMIT ?`,
  allAfter: sql`SELECT device_id, version, config FROM device_config WHERE device_id > ? ORDER BY device_id LIMIT ?`,
  // a known device only: unknown ids insert nothing
  saveState: sql`INSERT INTO device_state (device_id, state, reported_at) SELECT id, ?, ? FROM devices WHERE id = ?
                 ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, reported_at = excluded.reported_at`,
};

/** Device config versions and last reported state (protocol.md §Topics: `config`, `state`). */
export class ConfigStateStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /**
   * Stores a new config and resolves its version (previous + 1, starting at 1). With `ifVersion`,
   * refuses unless the current version equals it (`config_version_mismatch`; 0 = none yet).
   * `data`: the raw bytes a Cloud IoT Core session gets (protocol.md §Cloud IoT Core config); without it,
   * the config's JSON text.
   */
  setConfig(deviceId: string, config: JsonObject, ifVersion: number | undefined, actor: string, data?: Buffer): Promise<number> {
    return this.#ctx.write(function* (tx) {
      if (!(yield* deviceExists(deviceId))) throw new RegistryError('device_not_found', 'no such device');
      const current = (yield* value<number>(Q.version, deviceId)) ?? 0;
      if (ifVersion !== undefined && ifVersion !== current) throw new RegistryError('config_version_mismatch', 'config version mismatch');
      const version = current + 1;
      yield* run(Q.upsert, deviceId, version, JSON.stringify(config), tx.now(), data ?? null);
      yield* tx.audit({ actor, action: 'config.set', target: deviceId, detail: { version } });
      return version;
    });
  }

  /** The current config, or null when none was set. */
  getConfig(deviceId: string): Promise<{ version: number; config: JsonObject; updatedAt: number } | null> {
    return this.#ctx.read(function* () {
      const row = yield* get<{ version: number; config: string; updated_at: number }>(Q.config, deviceId);
      return row === undefined ? null : { version: row.version, config: json<JsonObject>(row.config), updatedAt: row.updated_at };
    });
  }

  /**
   * Every device's current config, `limit` at a time in device id order, after `after` (null: from
   * the start). The broker re-publishes them as retained messages at start (restart durability,
   * docs/operations.md §What survives a restart).
   */
  allConfigs(after: string | null, limit: number): Promise<Array<{ deviceId: string; version: number; config: JsonObject }>> {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) return Promise.reject(new TypeError('limit must be an integer 1..10000'));
    return this.#ctx.read(function* () {
      const rows =
        after === null
          ? yield* all<{ device_id: string; version: number; config: string }>(Q.allFirst, limit)
          : yield* all<{ device_id: string; version: number; config: string }>(Q.allAfter, after, limit);
      return rows.map((r) => ({ deviceId: r.device_id, version: r.version, config: json<JsonObject>(r.config) }));
    });
  }

  /** The last reported state, or null. */
  getState(deviceId: string): Promise<{ state: unknown; reportedAt: number } | null> {
    return this.#ctx.read(function* () {
      const row = yield* get<{ state: string; reported_at: number }>(Q.state, deviceId);
      return row === undefined ? null : { state: json<unknown>(row.state), reportedAt: row.reported_at };
    });
  }

  /**
   * Keeps the last state of a known device (unknown ids are ignored). A state nested deeper than
   * the API's JSON bodies (`MAX_JSON_DEPTH`) is not kept: it could not be served back.
   */
  async saveState(deviceId: string, stateJson: string, at: number): Promise<void> {
    if (jsonDepthExceeds(stateJson)) return;
    await this.#ctx.write(function* () {
      yield* run(Q.saveState, stateJson, at, deviceId);
    });
  }
}
