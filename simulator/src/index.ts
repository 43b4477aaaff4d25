/**
 * `@latchkey/simulator` — simulated thermostats and smart locks, and (soon) the fleet runner
 * behind `latchkey simulate`.
 */
export { Thermostat, THERMOSTAT_MODES, THERMOSTAT_COMMANDS, DEFAULT_THERMOSTAT_CONFIG, DEFAULT_THERMOSTAT_PHYSICS } from './devices/thermostat.ts';
export type { ThermostatOptions, ThermostatConfig, ThermostatMode, ThermostatPhysics, HvacState } from './devices/thermostat.ts';
export { Lock, LOCK_COMMANDS, DEFAULT_LOCK_BEHAVIOUR, DEFAULT_LOCK_CONFIG } from './devices/lock.ts';
export type { LockOptions, LockConfig, LockBehaviour, LockPosition, DoorPosition } from './devices/lock.ts';
export type { DeviceModel, DeviceKind, DeviceOutput, CommandReply, CommandOutcome, ConfigOutcome, CommandErrorCode } from './devices/device-model.ts';
export { createRandom, seedFrom } from './random.ts';
export type { Random } from './random.ts';
