/**
 * What every simulated device model has in common. Models are pure and deterministic: time only
 * moves through `step(dtMs)`, randomness comes from a seeded PRNG, and every effect is returned
 * as data (`DeviceOutput`) for the fleet runner to publish through the SDK.
 */

/** The device kinds the simulator knows. */
export type DeviceKind = 'thermostat' | 'lock';

/** A JSON-serialisable object. */
export type JsonObject = Record<string, unknown>;

/**
 * Something the device wants to tell the cloud (protocol.md §Topics):
 * `telemetry` → `devices/{id}/telemetry`, `event` → `devices/{id}/telemetry/events`,
 * `state` → `devices/{id}/state`.
 */
export type DeviceOutput =
  | { readonly type: 'telemetry'; readonly data: JsonObject }
  | { readonly type: 'event'; readonly name: string; readonly data: JsonObject }
  | { readonly type: 'state'; readonly state: JsonObject };

/** A reply to a command, as published on `devices/{id}/replies/{commandId}` (protocol.md §Topics). */
export type CommandReply = { readonly ok: true; readonly result: JsonObject } | { readonly ok: false; readonly error: string };

/** The reply to a command plus whatever the command caused (state reports, events). */
export interface CommandOutcome {
  readonly reply: CommandReply;
  readonly outputs: DeviceOutput[];
}

/** The result of applying a config document: keys taken, keys refused, and what changed. */
export interface ConfigOutcome {
  readonly applied: string[];
  readonly rejected: string[];
  readonly outputs: DeviceOutput[];
}

/** A simulated device. */
export interface DeviceModel {
  readonly kind: DeviceKind;
  /** Advances simulated time by `dtMs` milliseconds; returns what the device publishes meanwhile. */
  step(dtMs: number): DeviceOutput[];
  /** Handles a cloud → device command (untrusted input: never throws). */
  command(name: string, params: unknown): CommandOutcome;
  /** Applies a config document from `devices/{id}/config` (untrusted input: never throws). */
  configure(config: unknown): ConfigOutcome;
  /** The device's current state, as reported on `devices/{id}/state`. */
  state(): JsonObject;
}

/** Error strings of command replies. Stable: backends match on them. */
export type CommandErrorCode =
  | 'unknown_command'
  | 'invalid_params'
  | 'setpoint_out_of_range'
  | 'door_open'
  | 'jammed'
  | 'battery_depleted';

export function fail(error: CommandErrorCode, outputs: DeviceOutput[] = []): CommandOutcome {
  return { reply: { ok: false, error }, outputs };
}

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Throws TypeError unless `dtMs` is a finite, non-negative number (caller misuse). */
export function assertStep(dtMs: number): void {
  if (typeof dtMs !== 'number' || !Number.isFinite(dtMs) || dtMs < 0) {
    throw new TypeError('step: dtMs must be a finite number >= 0');
  }
}

export function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}
