import { jsonDepthExceeds } from '../json-depth.ts';
import type { RegistryContext } from './context.ts';
import { RegistryError } from './errors.ts';
import type { JsonObject } from './types.ts';

/** Device config versions and last reported state (protocol.md §Topics: `config`, `state`). */
export class ConfigStateStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /**
   * Stores a new config and returns its version (previous + 1, starting at 1). With `ifVersion`,
   * refuses unless the current version equals it (`config_version_mismatch`; 0 = none yet).
   * `data`: the raw bytes a Cloud IoT Core session gets (protocol.md §Cloud IoT Core config); without it,
   * the config's JSON text.
   */
  setConfig(deviceId: string, config: JsonObject, ifVersion: number | undefined, actor: string, data?: Buffer): number {
    return this.#ctx.write(() => {
      if (this.#ctx.stmt('SELECT 1 FROM devices WHERE id = ?').get(deviceId) === undefined) {
        throw new RegistryError('device_not_found', 'no such device');
      }
      const current = (this.#ctx.stmt('SELECT version FROM device_config WHERE device_id = ?').pluck().get(deviceId) as
        | number
        | undefined) ?? 0;
      if (ifVersion !== undefined && ifVersion !== current) {
        throw new RegistryError('config_version_mismatch', 'config version mismatch');
      }
      const version = current + 1;
      this.#ctx
        .stmt(
          `INSERT INTO device_config (device_id, version, config, updated_at, data) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(device_id) DO UPDATE SET version = excluded.version, config = excluded.config, updated_at = excluded.updated_at,
             data = excluded.data, device_ack_at = NULL`,
        )
        .run(deviceId, version, JSON.stringify(config), this.#ctx.clock(), data ?? null);
      this.#ctx.audit({ actor, action: 'config.set', target: deviceId, detail: { version } });
      return version;
    });
  }

  /** The current config, or null when none was set. */
  getConfig(deviceId: string): { version: number; config: JsonObject; updatedAt: number } | null {
    return this.#ctx.read(() => {
      const row = this.#ctx.stmt('SELECT version, config, updated_at FROM device_config WHERE device_id = ?').get(deviceId) as
        | { version: number; config: string; updated_at: number }
        | undefined;
      return row === undefined ? null : { version: row.version, config: JSON.parse(row.config) as JsonObject, updatedAt: row.updated_at };
    });
  }

  /** The last reported state, or null. */
  getState(deviceId: string): { state: unknown; reportedAt: number } | null {
    return this.#ctx.read(() => {
      const row = this.#ctx.stmt('SELECT state, reported_at FROM device_state WHERE device_id = ?').get(deviceId) as
        | { state: string; reported_at: number }
        | undefined;
      return row === undefined ? null : { state: JSON.parse(row.state) as unknown, reportedAt: row.reported_at };
    });
  }

  /**
   * Keeps the last state of a known device (unknown ids are ignored). A state nested deeper than
   * the API's JSON bodies (`MAX_JSON_DEPTH`) is not kept: it could not be served back.
   */
  saveState(deviceId: string, stateJson: string, at: number): void {
    if (jsonDepthExceeds(stateJson)) return;
    this.#ctx.write(() => {
      this.#ctx
        .stmt(
          `INSERT INTO device_state (device_id, state, reported_at) SELECT id, ?, ? FROM devices WHERE id = ?
           ON CONFLICT(device_id) DO UPDATE SET state = excluded.state, reported_at = excluded.reported_at`,
        )
        .run(stateJson, at, deviceId);
    });
  }
}
