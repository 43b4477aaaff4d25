/**
 * A simulated thermostat: a room that leaks heat toward the outside temperature, an HVAC unit
 * with first-order lag, hysteresis control, humidity, modes off/heat/cool/auto.
 * Pure and deterministic: time moves only through `step(dtMs)`; sensor noise is seeded.
 */
import { createRandom, type Random } from '../random.ts';
import { advanceRoom, DEFAULT_THERMOSTAT_PHYSICS, saturation, type HvacState, type ThermostatPhysics } from './room-physics.ts';
import {
  assertStep, fail, isPlainObject, round,
  type CommandOutcome, type ConfigOutcome, type DeviceModel, type DeviceOutput, type JsonObject,
} from './device-model.ts';

export { DEFAULT_THERMOSTAT_PHYSICS, type HvacState, type ThermostatPhysics } from './room-physics.ts';

export const THERMOSTAT_MODES = ['off', 'heat', 'cool', 'auto'] as const;
export type ThermostatMode = (typeof THERMOSTAT_MODES)[number];
export const THERMOSTAT_COMMANDS = ['setSetpoint', 'setMode'] as const;

/** Settings the cloud may change through `devices/{id}/config`. */
export interface ThermostatConfig {
  reportingIntervalS: number;
  minSetpoint: number;
  maxSetpoint: number;
}

export interface ThermostatOptions {
  seed?: number;
  /** °C, constant or a function of simulated elapsed milliseconds. */
  outsideTemperature?: number | ((elapsedMs: number) => number);
  outsideHumidity?: number;
  initialTemperature?: number;
  initialHumidity?: number;
  setpoint?: number;
  mode?: ThermostatMode;
  physics?: Partial<ThermostatPhysics>;
  config?: Partial<ThermostatConfig>;
  /** When the first telemetry is due, ms (default: one reporting interval); staggers a fleet. */
  firstReportAfterMs?: number;
}

export const DEFAULT_THERMOSTAT_CONFIG: Readonly<ThermostatConfig> = Object.freeze({
  reportingIntervalS: 60,
  minSetpoint: 10,
  maxSetpoint: 30,
});

/** Absolute bounds a config may set the setpoint limits to, °C. */
const SETPOINT_BOUNDS = { min: 0, max: 40 } as const;
const MAX_SUBSTEP_MS = 1000;

/**
 * A thermostat model.
 *
 * @example
 * ```ts
 * const t = new Thermostat({ seed: 7, outsideTemperature: 5, initialTemperature: 17, setpoint: 21, mode: 'heat' });
 * const outputs = t.step(60_000); // one simulated minute: telemetry, state changes
 * t.command('setSetpoint', { setpoint: 22 }); // { reply: { ok: true, result: { mode, setpoint, hvac } }, outputs }
 * ```
 */
export class Thermostat implements DeviceModel {
  readonly kind = 'thermostat';
  readonly physics: Readonly<ThermostatPhysics>;
  private readonly config: ThermostatConfig;
  private readonly rng: Random;
  private readonly outsideAt: (elapsedMs: number) => number;
  private readonly outsideHumidity: number;
  private elapsedMs = 0;
  private room: number;
  /** Indoor absolute humidity, g/m³. */
  private moisture: number;
  /** Signed HVAC output, °C per minute (positive heats). */
  private output = 0;
  private hvac: HvacState = 'idle';
  private mode: ThermostatMode;
  private setpoint: number;
  private lastHeatEndMs = -Infinity;
  private lastCoolEndMs = -Infinity;
  private lastReportMs = 0;
  private nextReportMs: number;

  constructor(options: ThermostatOptions = {}) {
    this.physics = Object.freeze({ ...DEFAULT_THERMOSTAT_PHYSICS, ...options.physics });
    this.config = { ...DEFAULT_THERMOSTAT_CONFIG, ...options.config };
    for (const [k, v] of Object.entries({ ...this.physics, ...this.config })) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`Thermostat: ${k} must be a finite number >= 0`);
    }
    const outside = options.outsideTemperature ?? 8;
    this.outsideAt = typeof outside === 'function' ? outside : () => outside;
    this.outsideHumidity = options.outsideHumidity ?? 60;
    this.rng = createRandom(options.seed ?? 1);
    this.room = options.initialTemperature ?? 19;
    this.moisture = ((options.initialHumidity ?? 45) / 100) * saturation(this.room);
    this.mode = options.mode ?? 'heat';
    if (!THERMOSTAT_MODES.includes(this.mode)) throw new TypeError('Thermostat: unknown mode');
    this.setpoint = options.setpoint ?? 21;
    this.nextReportMs = options.firstReportAfterMs ?? this.config.reportingIntervalS * 1000;
  }

  /** The true (noise-free) room temperature, °C — for tests and summaries. */
  get temperature(): number {
    return this.room;
  }

  /** The true relative humidity, %. */
  get relativeHumidity(): number {
    return (100 * this.moisture) / saturation(this.room);
  }

  state(): JsonObject {
    return { mode: this.mode, setpoint: this.setpoint, hvac: this.hvac };
  }

  step(dtMs: number): DeviceOutput[] {
    assertStep(dtMs);
    const outputs: DeviceOutput[] = [];
    let remaining = dtMs;
    while (remaining > 0) {
      const h = Math.min(remaining, MAX_SUBSTEP_MS, Math.max(this.nextReportMs - this.elapsedMs, 1));
      this.advance(h);
      remaining -= h;
      this.elapsedMs += h;
      this.control(outputs);
      if (this.elapsedMs >= this.nextReportMs) outputs.push(this.telemetry());
    }
    return outputs;
  }

  command(name: string, params: unknown): CommandOutcome {
    const outputs: DeviceOutput[] = [];
    if (name === 'setSetpoint') {
      const value = isPlainObject(params) ? params['setpoint'] : undefined;
      if (typeof value !== 'number' || !Number.isFinite(value)) return fail('invalid_params');
      if (value < this.config.minSetpoint || value > this.config.maxSetpoint) return fail('setpoint_out_of_range');
      this.changeState(outputs, () => (this.setpoint = round(value, 1)));
    } else if (name === 'setMode') {
      const value = isPlainObject(params) ? params['mode'] : undefined;
      if (!THERMOSTAT_MODES.includes(value as ThermostatMode)) return fail('invalid_params');
      this.changeState(outputs, () => (this.mode = value as ThermostatMode));
    } else {
      return fail('unknown_command');
    }
    this.control(outputs);
    return { reply: { ok: true, result: this.state() }, outputs };
  }

  configure(config: unknown): ConfigOutcome {
    const applied: string[] = [];
    const rejected: string[] = [];
    const outputs: DeviceOutput[] = [];
    if (!isPlainObject(config)) return { applied, rejected: ['config'], outputs };
    const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    for (const key of Object.keys(config)) {
      if (!(key in DEFAULT_THERMOSTAT_CONFIG)) rejected.push(key);
    }
    const interval = config['reportingIntervalS'];
    if (interval !== undefined) {
      if (isNum(interval) && Number.isInteger(interval) && interval >= 1 && interval <= 86_400) {
        this.config.reportingIntervalS = interval;
        this.nextReportMs = Math.max(this.lastReportMs + interval * 1000, this.elapsedMs);
        applied.push('reportingIntervalS');
      } else rejected.push('reportingIntervalS');
    }
    // The two limits are checked together: a pair that would cross is refused whole.
    const min = config['minSetpoint'] ?? this.config.minSetpoint;
    const max = config['maxSetpoint'] ?? this.config.maxSetpoint;
    const limitKeys = ['minSetpoint', 'maxSetpoint'].filter((k) => config[k] !== undefined);
    if (limitKeys.length > 0) {
      const inBounds = (v: unknown): v is number => isNum(v) && v >= SETPOINT_BOUNDS.min && v <= SETPOINT_BOUNDS.max;
      if (inBounds(min) && inBounds(max) && min < max) {
        this.config.minSetpoint = min;
        this.config.maxSetpoint = max;
        applied.push(...limitKeys);
        this.changeState(outputs, () => (this.setpoint = Math.min(max, Math.max(min, this.setpoint))));
        this.control(outputs);
      } else rejected.push(...limitKeys);
    }
    return { applied, rejected, outputs };
  }

  /** Current settings (a copy). */
  settings(): ThermostatConfig {
    return { ...this.config };
  }

  private advance(h: number): void {
    const next = advanceRoom(this.physics, { room: this.room, moisture: this.moisture, output: this.output }, {
      dtMs: h,
      hvac: this.hvac,
      outside: this.outsideAt(this.elapsedMs),
      outsideHumidity: this.outsideHumidity,
    });
    this.room = next.room;
    this.moisture = next.moisture;
    this.output = next.output;
  }

  /** Hysteresis control on the (noisy) sensor reading. */
  private control(outputs: DeviceOutput[]): void {
    const reading = this.room + this.rng.normal(0, this.physics.sensorNoiseC);
    const band = this.physics.hysteresisC;
    const guardMs = this.physics.changeoverGuardS * 1000;
    const sp = this.setpoint;
    const heats = this.mode === 'heat' || this.mode === 'auto';
    const cools = this.mode === 'cool' || this.mode === 'auto';
    let next: HvacState = this.hvac;
    if (this.hvac === 'heating') {
      if (!heats || reading >= sp) next = 'idle';
    } else if (this.hvac === 'cooling') {
      if (!cools || reading <= sp) next = 'idle';
    } else if (heats && reading < sp - band && (this.mode !== 'auto' || this.elapsedMs - this.lastCoolEndMs >= guardMs)) {
      next = 'heating';
    } else if (cools && reading > sp + band && (this.mode !== 'auto' || this.elapsedMs - this.lastHeatEndMs >= guardMs)) {
      next = 'cooling';
    }
    if (next === this.hvac) return;
    if (this.hvac === 'heating') this.lastHeatEndMs = this.elapsedMs;
    if (this.hvac === 'cooling') this.lastCoolEndMs = this.elapsedMs;
    this.changeState(outputs, () => (this.hvac = next));
  }

  private telemetry(): DeviceOutput {
    this.lastReportMs = this.elapsedMs;
    this.nextReportMs = this.elapsedMs + this.config.reportingIntervalS * 1000;
    return {
      type: 'telemetry',
      data: {
        temperature: round(this.room + this.rng.normal(0, this.physics.sensorNoiseC), 2),
        humidity: round(clamp(this.relativeHumidity + this.rng.normal(0, 0.5), 0, 100), 1),
        outsideTemperature: round(this.outsideAt(this.elapsedMs), 1),
        setpoint: this.setpoint,
        mode: this.mode,
        hvac: this.hvac,
      },
    };
  }

  /** State reports on change of mode, setpoint or HVAC activity. */
  private changeState(outputs: DeviceOutput[], change: () => void): void {
    const before = JSON.stringify(this.state());
    change();
    if (JSON.stringify(this.state()) !== before) outputs.push({ type: 'state', state: this.state() });
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
