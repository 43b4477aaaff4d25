/**
 * The fleet's device models: each device gets its own seeded climate, setpoint, battery and
 * telemetry phase, so a fleet is varied yet reproducible from one seed.
 */
import type { DeviceKind, DeviceModel } from './devices/device-model.ts';
import { Lock } from './devices/lock.ts';
import { Thermostat, type ThermostatMode } from './devices/thermostat.ts';
import { createRandom, seedFrom } from './random.ts';

/**
 * A model for device `id` of `kind`, reporting every `intervalS` seconds from a random phase.
 *
 * @example
 * ```ts
 * const model = createFleetModel('thermostat', 'sim-1a2b3c-t00001', { seed: 1, intervalS: 5 });
 * ```
 */
export function createFleetModel(kind: DeviceKind, id: string, o: { seed: number; intervalS: number }): DeviceModel {
  const rng = createRandom(seedFrom(`${o.seed}:${id}`));
  const modelSeed = Math.floor(rng.next() * 2 ** 32);
  // Stagger the first report over one interval so a fleet does not publish in lock-step.
  const firstReportAfterMs = Math.round(rng.next() * o.intervalS * 1000);
  if (kind === 'lock') {
    return new Lock({
      seed: modelSeed,
      batteryPct: rng.between(15, 100),
      behaviour: { activityPerHour: 6 },
      config: { reportingIntervalS: o.intervalS, autoRelockS: 30 },
      firstReportAfterMs,
    });
  }
  const outside = rng.between(-5, 32);
  const mode: ThermostatMode = outside < 14 ? 'heat' : outside > 24 ? 'cool' : 'auto';
  return new Thermostat({
    seed: modelSeed,
    outsideTemperature: Math.round(outside * 10) / 10,
    outsideHumidity: Math.round(rng.between(30, 80)),
    initialTemperature: rng.between(17, 26),
    initialHumidity: rng.between(30, 60),
    setpoint: Math.round(rng.between(19, 23) * 2) / 2,
    mode,
    config: { reportingIntervalS: o.intervalS },
    firstReportAfterMs,
  });
}
