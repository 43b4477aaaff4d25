/**
 * `@latchkey/simulator` — simulated thermostats and smart locks, and the fleet runner behind
 * `latchkey simulate` (docs/simulator.md). Imports only the SDK's public entry; talks HTTP to
 * provisioning like any customer backend.
 */
export { runFleet } from './fleet.ts';
export type { FleetDeps, FleetResult, ProvisioningMode } from './fleet.ts';
export { resolveFleetOptions, FLEET_DEFAULTS } from './fleet-options.ts';
export type { FleetOptions } from './fleet-options.ts';
export { buildReport, formatSummary, reportProblems, percentile } from './report.ts';
export type { SimulationReport, FleetMeasurements, ReportProblem } from './report.ts';
export { createProgress } from './progress.ts';
export type { Progress, ProgressSnapshot, ProgressOptions } from './progress.ts';
export { ProvisioningApi, SimulatorError } from './provisioning-api.ts';
export { TelemetryCounter } from './telemetry-counter.ts';
export { ROGUE_KINDS } from './rogues.ts';
export type { RogueKind, RogueResult } from './rogues.ts';
export { Thermostat, THERMOSTAT_MODES, THERMOSTAT_COMMANDS, DEFAULT_THERMOSTAT_CONFIG, DEFAULT_THERMOSTAT_PHYSICS } from './devices/thermostat.ts';
export type { ThermostatOptions, ThermostatConfig, ThermostatMode, ThermostatPhysics, HvacState } from './devices/thermostat.ts';
export { Lock, LOCK_COMMANDS, DEFAULT_LOCK_BEHAVIOUR, DEFAULT_LOCK_CONFIG } from './devices/lock.ts';
export type { LockOptions, LockConfig, LockBehaviour, LockPosition, DoorPosition } from './devices/lock.ts';
export type { DeviceModel, DeviceKind, DeviceOutput, CommandReply, CommandOutcome, ConfigOutcome, CommandErrorCode } from './devices/device-model.ts';
export { createRandom, seedFrom } from './random.ts';
export type { Random } from './random.ts';
