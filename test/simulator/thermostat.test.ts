import { describe, expect, it } from 'vitest';
import { Thermostat, type ThermostatOptions } from '../../simulator/src/devices/thermostat.ts';
import type { DeviceOutput } from '../../simulator/src/devices/device-model.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** Steps a thermostat in 1 s increments, recording HVAC transitions with their time. */
function run(t: Thermostat, totalMs: number, stepMs = SECOND) {
  const transitions: { atMs: number; hvac: string }[] = [];
  const outputs: DeviceOutput[] = [];
  for (let at = stepMs; at <= totalMs; at += stepMs) {
    for (const o of t.step(stepMs)) {
      outputs.push(o);
      if (o.type === 'state') transitions.push({ atMs: at, hvac: String(o.state['hvac']) });
    }
  }
  return { transitions, outputs };
}

function heating(options: ThermostatOptions = {}) {
  return new Thermostat({ seed: 11, outsideTemperature: 5, initialTemperature: 17, setpoint: 21, mode: 'heat', ...options });
}

describe('thermostat physics', () => {
  it('reaches the setpoint within the time the HVAC capacity and leakage allow', () => {
    const t = heating();
    const { transitions } = run(t, 30 * MINUTE);
    expect(transitions[0]).toEqual({ atMs: SECOND, hvac: 'heating' });
    const reached = transitions.find((x) => x.hvac === 'idle');
    expect(reached).toBeDefined();
    // 4 °C at 0.5 °C/min is 8 min without losses; leakage toward 5 °C (τ = 180 min) costs at most
    // 16/180 °C/min, and the 30 s HVAC lag about half a minute: 10.3 min at worst.
    expect(reached!.atMs).toBeGreaterThanOrEqual(8 * MINUTE);
    expect(reached!.atMs).toBeLessThanOrEqual(10.5 * MINUTE);
  });

  it('holds the setpoint with hysteresis: no rapid cycling, temperature within the band', () => {
    const t = heating({ initialTemperature: 21 });
    const periods: number[] = [];
    let last = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let at = SECOND; at <= 6 * 60 * MINUTE; at += SECOND) {
      for (const o of t.step(SECOND)) {
        if (o.type !== 'state') continue;
        if (last > 0) periods.push(at - last);
        last = at;
      }
      if (at > 30 * MINUTE) {
        min = Math.min(min, t.temperature);
        max = Math.max(max, t.temperature);
      }
    }
    const cyclesPerHour = periods.length / 2 / 6;
    expect(cyclesPerHour).toBeGreaterThan(2); // it does cycle (leakage is real)...
    expect(cyclesPerHour).toBeLessThanOrEqual(10); // ...but slowly
    expect(Math.min(...periods)).toBeGreaterThanOrEqual(60 * SECOND);
    expect(min).toBeGreaterThan(21 - 0.5 - 0.3);
    expect(max).toBeLessThan(21 + 0.5);
  });

  it('without a deadband the same room cycles rapidly (the hysteresis is what holds)', () => {
    const t = heating({ initialTemperature: 21, physics: { hysteresisC: 0 } });
    const { transitions } = run(t, 60 * MINUTE);
    const periods = transitions.slice(1).map((x, i) => x.atMs - transitions[i]!.atMs);
    expect(Math.min(...periods)).toBeLessThan(60 * SECOND);
  });

  it('in off mode drifts toward the outside temperature (Newton cooling, τ = 180 min)', () => {
    const t = new Thermostat({ seed: 2, outsideTemperature: 5, initialTemperature: 20, mode: 'off' });
    const { outputs } = run(t, 9 * 60 * MINUTE, MINUTE);
    expect(outputs.filter((o) => o.type === 'state')).toEqual([]);
    expect(t.temperature).toBeCloseTo(5 + 15 * Math.exp(-3), 2);
  });

  it('cools toward the setpoint in cool mode and dehumidifies while cooling', () => {
    const opts = { seed: 5, outsideTemperature: 32, outsideHumidity: 60, initialTemperature: 28, initialHumidity: 70, setpoint: 24 };
    const cool = new Thermostat({ ...opts, mode: 'cool' });
    const off = new Thermostat({ ...opts, mode: 'off' });
    const { transitions } = run(cool, 40 * MINUTE);
    run(off, 40 * MINUTE);
    expect(transitions[0]!.hvac).toBe('cooling');
    expect(transitions.some((x) => x.hvac === 'idle')).toBe(true);
    expect(cool.temperature).toBeLessThan(25);
    expect(off.temperature).toBeGreaterThan(28);
    expect(cool.relativeHumidity).toBeLessThan(off.relativeHumidity);
  });

  it('auto mode heats a cold room without ever switching to cooling, and cools a hot one', () => {
    const cold = new Thermostat({ seed: 4, outsideTemperature: 5, initialTemperature: 17, setpoint: 21, mode: 'auto' });
    const hot = new Thermostat({ seed: 4, outsideTemperature: 31, initialTemperature: 27, setpoint: 23, mode: 'auto' });
    const coldRun = run(cold, 3 * 60 * MINUTE);
    const hotRun = run(hot, 3 * 60 * MINUTE);
    expect(new Set(coldRun.transitions.map((x) => x.hvac))).toEqual(new Set(['heating', 'idle']));
    expect(new Set(hotRun.transitions.map((x) => x.hvac))).toEqual(new Set(['cooling', 'idle']));
  });

  it('is deterministic for a seed, and the seed changes the noise', () => {
    const a = run(heating(), 20 * MINUTE).outputs;
    const b = run(heating(), 20 * MINUTE).outputs;
    const c = run(heating({ seed: 12 }), 20 * MINUTE).outputs;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('refuses a negative or non-finite step as caller misuse', () => {
    expect(() => heating().step(-1)).toThrow(TypeError);
    expect(() => heating().step(Number.NaN)).toThrow(TypeError);
  });
});

describe('thermostat telemetry and config', () => {
  it('publishes telemetry every reportingIntervalS and honours a new interval', () => {
    const t = heating({ config: { reportingIntervalS: 10 } });
    const count = (outs: DeviceOutput[]) => outs.filter((o) => o.type === 'telemetry').length;
    expect(count(t.step(60 * SECOND))).toBe(6);
    expect(t.configure({ reportingIntervalS: 5 })).toMatchObject({ applied: ['reportingIntervalS'], rejected: [] });
    expect(count(t.step(60 * SECOND))).toBe(12);
    const sample = t.step(5 * SECOND).find((o) => o.type === 'telemetry');
    expect(sample?.type === 'telemetry' && Object.keys(sample.data).sort()).toEqual(
      ['humidity', 'hvac', 'mode', 'outsideTemperature', 'setpoint', 'temperature'],
    );
  });

  it('rejects bad config values and unknown keys without changing anything', () => {
    const t = heating();
    expect(t.configure({ reportingIntervalS: 0, colour: 'red' })).toMatchObject({ applied: [], rejected: ['colour', 'reportingIntervalS'] });
    expect(t.configure({ minSetpoint: 25, maxSetpoint: 20 }).rejected).toEqual(['minSetpoint', 'maxSetpoint']);
    expect(t.configure('nope').rejected).toEqual(['config']);
    expect(t.configure({ maxSetpoint: 99 }).rejected).toEqual(['maxSetpoint']);
    expect(t.settings()).toEqual({ reportingIntervalS: 60, minSetpoint: 10, maxSetpoint: 30 });
  });

  it('clamps the setpoint into new limits and reports the state change', () => {
    const t = heating();
    const { applied, outputs } = t.configure({ maxSetpoint: 20 });
    expect(applied).toEqual(['maxSetpoint']);
    expect(t.state()['setpoint']).toBe(20);
    expect(outputs.some((o) => o.type === 'state' && o.state['setpoint'] === 20)).toBe(true);
  });
});

describe('thermostat commands', () => {
  it('setSetpoint validates against the configured limits and replies with the new state', () => {
    const t = heating({ config: { minSetpoint: 15, maxSetpoint: 25 } });
    expect(t.command('setSetpoint', { setpoint: 26 }).reply).toEqual({ ok: false, error: 'setpoint_out_of_range' });
    expect(t.command('setSetpoint', { setpoint: 14.9 }).reply).toEqual({ ok: false, error: 'setpoint_out_of_range' });
    expect(t.command('setSetpoint', { setpoint: '22' }).reply).toEqual({ ok: false, error: 'invalid_params' });
    expect(t.command('setSetpoint', null).reply).toEqual({ ok: false, error: 'invalid_params' });
    const ok = t.command('setSetpoint', { setpoint: 22.5 });
    expect(ok.reply).toEqual({ ok: true, result: { mode: 'heat', setpoint: 22.5, hvac: 'heating' } });
    expect(ok.outputs).toContainEqual({ type: 'state', state: { mode: 'heat', setpoint: 22.5, hvac: 'heating' } });
  });

  it('setMode switches modes; off stops the HVAC at once', () => {
    const t = heating();
    t.step(SECOND);
    expect(t.state()['hvac']).toBe('heating');
    expect(t.command('setMode', { mode: 'turbo' }).reply).toEqual({ ok: false, error: 'invalid_params' });
    const off = t.command('setMode', { mode: 'off' });
    expect(off.reply).toEqual({ ok: true, result: { mode: 'off', setpoint: 21, hvac: 'idle' } });
    expect(off.outputs.filter((o) => o.type === 'state')).toHaveLength(2); // mode, then hvac
    expect(t.command('setMode', { mode: 'off' }).outputs).toEqual([]); // no change, no report
  });

  it('answers an unknown command with unknown_command', () => {
    expect(heating().command('selfDestruct', {}).reply).toEqual({ ok: false, error: 'unknown_command' });
  });
});
