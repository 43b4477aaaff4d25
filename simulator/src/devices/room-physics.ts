/**
 * The physics of a heated/cooled room, as a pure function of time: Newton's law of cooling toward
 * the outside temperature, an HVAC unit whose output follows its on/off state with first-order
 * lag, and indoor moisture (absolute humidity) that follows the outside air, gains from indoor
 * sources and condenses on the cooling coil.
 */

export type HvacState = 'idle' | 'heating' | 'cooling';

/** Physical constants of the room and the HVAC unit. */
export interface ThermostatPhysics {
  /** Time constant of the room drifting toward the outside temperature, minutes. */
  leakTimeConstantMin: number;
  /** Full heating power, °C per minute. */
  heatCapacityCPerMin: number;
  /** Full cooling power, °C per minute. */
  coolCapacityCPerMin: number;
  /** Time constant of the HVAC output ramping up or down, seconds. */
  hvacLagS: number;
  /** Deadband: heat turns on below setpoint − band (cool above setpoint + band), off at the setpoint. */
  hysteresisC: number;
  /** In auto mode, the opposite action may not start within this many seconds of the last one ending. */
  changeoverGuardS: number;
  /** Standard deviation of the temperature sensor, °C. */
  sensorNoiseC: number;
  /** Time constant of indoor moisture following the outside air (air exchange), minutes. */
  humidityTimeConstantMin: number;
  /** Moisture added indoors (people, cooking), g/m³ per minute. */
  moistureSourceGPerM3PerMin: number;
  /** Moisture condensed on the cooling coil at full cooling power, g/m³ per minute. */
  coilRemovalGPerM3PerMin: number;
}

export const DEFAULT_THERMOSTAT_PHYSICS: Readonly<ThermostatPhysics> = Object.freeze({
  leakTimeConstantMin: 180,
  heatCapacityCPerMin: 0.5,
  coolCapacityCPerMin: 0.4,
  hvacLagS: 30,
  hysteresisC: 0.5,
  changeoverGuardS: 600,
  sensorNoiseC: 0.05,
  humidityTimeConstantMin: 120,
  moistureSourceGPerM3PerMin: 0.02,
  coilRemovalGPerM3PerMin: 0.8,
});

/** The room's physical state. */
export interface RoomState {
  /** Room temperature, °C. */
  room: number;
  /** Indoor absolute humidity, g/m³. */
  moisture: number;
  /** Signed HVAC output, °C per minute (positive heats). */
  output: number;
}

/** What drives the room during one step. */
export interface RoomInputs {
  dtMs: number;
  hvac: HvacState;
  /** Outside temperature, °C. */
  outside: number;
  /** Outside relative humidity, %. */
  outsideHumidity: number;
}

/**
 * Advances the room by `inputs.dtMs` (keep steps ≤ 1 s: the terms are integrated separately).
 *
 * @example
 * ```ts
 * const next = advanceRoom(DEFAULT_THERMOSTAT_PHYSICS, { room: 18, moisture: 7, output: 0 },
 *   { dtMs: 1000, hvac: 'heating', outside: 5, outsideHumidity: 60 });
 * ```
 */
export function advanceRoom(p: Readonly<ThermostatPhysics>, s: Readonly<RoomState>, inputs: RoomInputs): RoomState {
  const { dtMs, hvac, outside } = inputs;
  const minutes = dtMs / 60_000;
  const target = hvac === 'heating' ? p.heatCapacityCPerMin : hvac === 'cooling' ? -p.coolCapacityCPerMin : 0;
  // First-order HVAC response: the output approaches full power (or zero) with time constant hvacLagS.
  const output = target + (s.output - target) * Math.exp(-dtMs / 1000 / Math.max(p.hvacLagS, 1e-3));
  // Thermal leakage (Newton's law of cooling) plus the HVAC output.
  const room = outside + (s.room - outside) * Math.exp(-minutes / p.leakTimeConstantMin) + output * minutes;
  // Moisture follows the outside air's absolute humidity plus indoor sources; the cooling coil
  // condenses some out; air cannot hold more than saturation at room temperature.
  const outsideMoisture = (inputs.outsideHumidity / 100) * saturation(outside);
  const coolFraction = Math.max(0, -output) / Math.max(p.coolCapacityCPerMin, 1e-9);
  const equilibrium = outsideMoisture + p.moistureSourceGPerM3PerMin * p.humidityTimeConstantMin;
  let moisture = equilibrium + (s.moisture - equilibrium) * Math.exp(-minutes / p.humidityTimeConstantMin);
  moisture -= p.coilRemovalGPerM3PerMin * coolFraction * minutes;
  moisture = Math.min(saturation(room), Math.max(0, moisture));
  return { room, moisture, output };
}

/** Saturation vapour density at `tempC`, g/m³ (Magnus formula for the saturation pressure). */
export function saturation(tempC: number): number {
  const hPa = 6.112 * Math.exp((17.67 * tempC) / (tempC + 243.5));
  return (216.74 * hPa) / (273.15 + tempC);
}
