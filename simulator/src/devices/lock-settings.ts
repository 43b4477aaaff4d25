/**
 * The smart lock's settings: how it and its users behave, what the cloud may configure, and the
 * defaults of both (lock.ts is the model).
 */

export type LockPosition = 'locked' | 'unlocked' | 'jammed';
export type DoorPosition = 'open' | 'closed';
export type ActuationSource = 'command' | 'manual' | 'autoRelock';
export const LOCK_COMMANDS = ['lock', 'unlock'] as const;

/** How the lock and its users behave. */
export interface LockBehaviour {
  /** Battery used per motor actuation, %. */
  drainPerActuationPct: number;
  /** Chance that an actuation jams the bolt, 0..1. */
  jamProbability: number;
  /** Random visits per hour: someone unlocks by hand, opens the door, closes it again. */
  activityPerHour: number;
  /** Random tamper-switch events per hour. */
  tamperPerHour: number;
  /** How long a visitor holds the door open, seconds (uniform between the two). */
  doorOpenMinS: number;
  doorOpenMaxS: number;
}

/** Settings the cloud may change through `devices/{id}/config`. */
export interface LockConfig {
  reportingIntervalS: number;
  /** Seconds after the door closes (unlocked) before the lock relocks itself; 0 turns it off. */
  autoRelockS: number;
  /** Below this battery level the lock reports low battery, %. */
  lowBatteryPct: number;
}

export interface LockOptions {
  seed?: number;
  batteryPct?: number;
  lock?: 'locked' | 'unlocked';
  door?: DoorPosition;
  behaviour?: Partial<LockBehaviour>;
  config?: Partial<LockConfig>;
  /** When the first telemetry is due, ms (default: one reporting interval); staggers a fleet. */
  firstReportAfterMs?: number;
}

export const DEFAULT_LOCK_BEHAVIOUR: Readonly<LockBehaviour> = Object.freeze({
  drainPerActuationPct: 0.5,
  jamProbability: 0.002,
  activityPerHour: 2,
  tamperPerHour: 0.05,
  doorOpenMinS: 3,
  doorOpenMaxS: 20,
});

export const DEFAULT_LOCK_CONFIG: Readonly<LockConfig> = Object.freeze({
  reportingIntervalS: 60,
  autoRelockS: 30,
  lowBatteryPct: 20,
});

export const CONFIG_RANGES: Record<keyof LockConfig, [number, number]> = {
  reportingIntervalS: [1, 86_400],
  autoRelockS: [0, 86_400],
  lowBatteryPct: [0, 100],
};
