/**
 * A simulated smart lock: locked/unlocked/jammed, a door contact, a battery that drains per
 * actuation, low-battery reporting, an auto-relock timer, door and tamper events.
 * Pure and deterministic: time moves only through `step(dtMs)`; random activity is seeded.
 */
import { createRandom, type Random } from '../random.ts';
import {
  assertStep, fail, isPlainObject, round,
  type CommandErrorCode, type CommandOutcome, type ConfigOutcome, type DeviceModel, type DeviceOutput, type JsonObject,
} from './device-model.ts';
import {
  CONFIG_RANGES, DEFAULT_LOCK_BEHAVIOUR, DEFAULT_LOCK_CONFIG,
  type ActuationSource, type DoorPosition, type LockBehaviour, type LockConfig, type LockOptions, type LockPosition,
} from './lock-settings.ts';

export { LOCK_COMMANDS, DEFAULT_LOCK_BEHAVIOUR, DEFAULT_LOCK_CONFIG } from './lock-settings.ts';
export type { LockPosition, DoorPosition, ActuationSource, LockBehaviour, LockConfig, LockOptions } from './lock-settings.ts';

const MAX_SUBSTEP_MS = 1000;
const HOUR_MS = 3_600_000;

/**
 * A smart lock model.
 *
 * @example
 * ```ts
 * const lock = new Lock({ seed: 3, behaviour: { activityPerHour: 0 } });
 * lock.command('unlock', {}); // { reply: { ok: true, result: { lock: 'unlocked', door: 'closed', ... } }, outputs }
 * lock.step(30_000);          // auto-relock fires after config.autoRelockS
 * ```
 */
export class Lock implements DeviceModel {
  readonly kind = 'lock';
  readonly behaviour: Readonly<LockBehaviour>;
  private readonly config: LockConfig;
  private readonly rng: Random;
  private elapsedMs = 0;
  private position: LockPosition;
  private door: DoorPosition;
  private battery: number;
  private batteryLow = false;
  private actuations = 0;
  /** Since when the lock has been unlocked with the door closed (the auto-relock timer), or null. */
  private relockFromMs: number | null = null;
  private doorClosesAtMs: number | null = null;
  private nextReportMs: number;

  constructor(options: LockOptions = {}) {
    this.behaviour = Object.freeze({ ...DEFAULT_LOCK_BEHAVIOUR, ...options.behaviour });
    this.config = { ...DEFAULT_LOCK_CONFIG, ...options.config };
    for (const [k, v] of Object.entries({ ...this.behaviour, ...this.config })) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`Lock: ${k} must be a finite number >= 0`);
    }
    if (this.behaviour.doorOpenMaxS < this.behaviour.doorOpenMinS) throw new TypeError('Lock: doorOpenMaxS < doorOpenMinS');
    this.rng = createRandom(options.seed ?? 1);
    this.position = options.lock ?? 'locked';
    this.door = options.door ?? 'closed';
    this.battery = Math.min(100, Math.max(0, options.batteryPct ?? 100));
    this.batteryLow = this.battery < this.config.lowBatteryPct;
    if (this.position === 'unlocked' && this.door === 'closed') this.relockFromMs = 0;
    this.nextReportMs = options.firstReportAfterMs ?? this.config.reportingIntervalS * 1000;
  }

  /** The battery level, % (unrounded). */
  get batteryPct(): number {
    return this.battery;
  }

  state(): JsonObject {
    return { lock: this.position, door: this.door, batteryPct: round(this.battery, 1), batteryLow: this.batteryLow };
  }

  step(dtMs: number): DeviceOutput[] {
    assertStep(dtMs);
    const out: DeviceOutput[] = [];
    let remaining = dtMs;
    while (remaining > 0) {
      const deadlines = [this.nextReportMs, this.doorClosesAtMs ?? Infinity, this.relockDueMs()];
      const h = Math.min(remaining, MAX_SUBSTEP_MS, ...deadlines.map((d) => Math.max(d - this.elapsedMs, 1)));
      remaining -= h;
      this.elapsedMs += h;
      if (this.doorClosesAtMs !== null && this.elapsedMs >= this.doorClosesAtMs) out.push(...this.closeDoor());
      if (this.elapsedMs >= this.relockDueMs()) {
        this.change(out, () => this.actuate(out, 'locked', 'autoRelock'));
        this.relockFromMs = null; // one attempt per timer: a dead battery does not retry every millisecond
      }
      if (this.rng.chance(rate(this.behaviour.tamperPerHour, h))) out.push(...this.tamper('tamper_switch'));
      if (this.rng.chance(rate(this.behaviour.activityPerHour, h))) this.visit(out);
      if (this.elapsedMs >= this.nextReportMs) out.push(this.telemetry());
    }
    return out;
  }

  command(name: string, _params: unknown): CommandOutcome {
    if (name !== 'lock' && name !== 'unlock') return fail('unknown_command');
    // The bolt is not driven while the door stands open (it would block the door or do nothing).
    if (this.door === 'open') return fail('door_open');
    const target = name === 'lock' ? 'locked' : 'unlocked';
    const outputs: DeviceOutput[] = [];
    if (this.position === target) return { reply: { ok: true, result: this.state() }, outputs };
    const error = this.change(outputs, () => this.actuate(outputs, target, 'command'));
    return error ? fail(error, outputs) : { reply: { ok: true, result: this.state() }, outputs };
  }

  configure(config: unknown): ConfigOutcome {
    const applied: string[] = [];
    const rejected: string[] = [];
    const outputs: DeviceOutput[] = [];
    if (!isPlainObject(config)) return { applied, rejected: ['config'], outputs };
    for (const [key, value] of Object.entries(config)) {
      const range = CONFIG_RANGES[key as keyof LockConfig] as [number, number] | undefined;
      const ok = range && typeof value === 'number' && Number.isInteger(value) && value >= range[0] && value <= range[1];
      if (!ok) {
        rejected.push(key);
        continue;
      }
      this.config[key as keyof LockConfig] = value;
      applied.push(key);
    }
    if (applied.includes('reportingIntervalS')) this.nextReportMs = this.elapsedMs + this.config.reportingIntervalS * 1000;
    if (applied.includes('lowBatteryPct')) {
      this.change(outputs, () => {
        if (this.battery >= this.config.lowBatteryPct) this.batteryLow = false;
        this.checkBattery(outputs);
      });
    }
    return { applied, rejected, outputs };
  }

  /** Someone turns the thumb-turn or uses the keypad. */
  manualActuate(target: 'locked' | 'unlocked'): DeviceOutput[] {
    const out: DeviceOutput[] = [];
    if (this.door === 'closed' && this.position !== target) this.change(out, () => this.actuate(out, target, 'manual'));
    return out;
  }

  /** The door contact opens. Opening a locked door is a forced entry. */
  openDoor(): DeviceOutput[] {
    const out: DeviceOutput[] = [];
    if (this.door === 'open') return out;
    this.change(out, () => {
      if (this.position === 'locked') out.push(event('tamper', { reason: 'forced_entry' }));
      this.door = 'open';
      this.relockFromMs = null;
      out.push(event('doorOpened', {}));
    });
    return out;
  }

  /** The door contact closes; an unlocked lock starts its auto-relock timer. */
  closeDoor(): DeviceOutput[] {
    const out: DeviceOutput[] = [];
    this.doorClosesAtMs = null;
    if (this.door === 'closed') return out;
    this.change(out, () => {
      this.door = 'closed';
      if (this.position === 'unlocked') this.relockFromMs = this.elapsedMs;
      out.push(event('doorClosed', {}));
    });
    return out;
  }

  /** The tamper switch trips (cover removed, forced handle, ...). */
  tamper(reason: string): DeviceOutput[] {
    return [event('tamper', { reason })];
  }

  /** Drives the bolt: drains the battery, may jam. Returns the error, or null on success. */
  private actuate(out: DeviceOutput[], target: 'locked' | 'unlocked', source: ActuationSource): CommandErrorCode | null {
    if (this.battery <= 0) return 'battery_depleted';
    this.battery = Math.max(0, this.battery - this.behaviour.drainPerActuationPct);
    this.actuations++;
    const jammed = this.rng.chance(this.behaviour.jamProbability);
    this.position = jammed ? 'jammed' : target;
    this.relockFromMs = this.position === 'unlocked' && this.door === 'closed' ? this.elapsedMs : null;
    out.push(jammed ? event('jammed', { target, source }) : event(target, { source }));
    this.checkBattery(out);
    return jammed ? 'jammed' : null;
  }

  private checkBattery(out: DeviceOutput[]): void {
    if (this.batteryLow || this.battery >= this.config.lowBatteryPct) return;
    this.batteryLow = true;
    out.push(event('lowBattery', { batteryPct: round(this.battery, 1) }));
  }

  private relockDueMs(): number {
    if (this.relockFromMs === null || this.config.autoRelockS === 0 || this.position !== 'unlocked') return Infinity;
    return this.relockFromMs + this.config.autoRelockS * 1000;
  }

  /** A visitor: unlocks by hand if needed, opens the door, closes it after a while. */
  private visit(out: DeviceOutput[]): void {
    if (this.door === 'open' || this.position === 'jammed') return;
    out.push(...this.manualActuate('unlocked'));
    if (this.position !== 'unlocked') return;
    out.push(...this.openDoor());
    const { doorOpenMinS, doorOpenMaxS } = this.behaviour;
    this.doorClosesAtMs = this.elapsedMs + Math.round(this.rng.between(doorOpenMinS, doorOpenMaxS) * 1000);
  }

  private telemetry(): DeviceOutput {
    this.nextReportMs = this.elapsedMs + this.config.reportingIntervalS * 1000;
    return {
      type: 'telemetry',
      data: { batteryPct: round(this.battery, 1), lock: this.position, door: this.door, actuations: this.actuations },
    };
  }

  /** State reports on change of lock position, door or low-battery flag. */
  private change<T>(out: DeviceOutput[], action: () => T): T {
    const key = (): string => `${this.position}|${this.door}|${this.batteryLow}`;
    const before = key();
    const result = action();
    if (key() !== before) out.push({ type: 'state', state: this.state() });
    return result;
  }
}

function event(name: string, data: JsonObject): DeviceOutput {
  return { type: 'event', name, data };
}

/** Probability of at least one Poisson event at `perHour` within `ms`. */
function rate(perHour: number, ms: number): number {
  return perHour <= 0 ? 0 : 1 - Math.exp((-perHour * ms) / HOUR_MS);
}
