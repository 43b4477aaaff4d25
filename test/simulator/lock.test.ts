import { describe, expect, it } from 'vitest';
import { Lock, type LockOptions } from '../../simulator/src/devices/lock.ts';
import type { DeviceOutput } from '../../simulator/src/devices/device-model.ts';

const SECOND = 1000;
const quiet = { activityPerHour: 0, tamperPerHour: 0, jamProbability: 0 };

function lock(options: LockOptions = {}) {
  return new Lock({ seed: 9, ...options, behaviour: { ...quiet, ...options.behaviour } });
}
const events = (outs: DeviceOutput[]) => outs.flatMap((o) => (o.type === 'event' ? [{ name: o.name, ...o.data }] : []));
const states = (outs: DeviceOutput[]) => outs.flatMap((o) => (o.type === 'state' ? [o.state] : []));

describe('lock commands', () => {
  it('unlocks and locks, replying with the resulting state, and reports the change', () => {
    const l = lock();
    const un = l.command('unlock', {});
    expect(un.reply).toEqual({ ok: true, result: { lock: 'unlocked', door: 'closed', batteryPct: 99.5, batteryLow: false } });
    expect(events(un.outputs)).toEqual([{ name: 'unlocked', source: 'command' }]);
    expect(states(un.outputs)).toEqual([{ lock: 'unlocked', door: 'closed', batteryPct: 99.5, batteryLow: false }]);
    expect(l.command('lock', {}).reply).toMatchObject({ ok: true, result: { lock: 'locked' } });
    // Already locked: no actuation, no battery used, no report.
    const again = l.command('lock', {});
    expect(again).toEqual({ reply: { ok: true, result: { lock: 'locked', door: 'closed', batteryPct: 99, batteryLow: false } }, outputs: [] });
  });

  it('refuses unlock (and lock) while the door is open', () => {
    const l = lock({ lock: 'unlocked' });
    l.openDoor();
    expect(l.command('unlock', {}).reply).toEqual({ ok: false, error: 'door_open' });
    expect(l.command('lock', {}).reply).toEqual({ ok: false, error: 'door_open' });
    expect(l.batteryPct).toBe(100);
    l.closeDoor();
    expect(l.command('lock', {}).reply).toMatchObject({ ok: true, result: { lock: 'locked' } });
  });

  it('answers an unknown command with unknown_command', () => {
    expect(lock().command('open-sesame', {}).reply).toEqual({ ok: false, error: 'unknown_command' });
  });
});

describe('lock battery', () => {
  it('drains per actuation, fires lowBattery once when crossing the threshold, and stops at empty', () => {
    const l = lock({ batteryPct: 21.2, behaviour: { drainPerActuationPct: 0.5 } });
    const outs: DeviceOutput[] = [];
    for (let i = 0; i < 4; i++) outs.push(...l.command(i % 2 ? 'lock' : 'unlock', {}).outputs);
    expect(l.batteryPct).toBeCloseTo(19.2, 6);
    const low = events(outs).filter((e) => e.name === 'lowBattery');
    expect(low).toEqual([{ name: 'lowBattery', batteryPct: 19.7 }]);
    expect(states(outs).map((s) => s['batteryLow'])).toEqual([false, false, true, true]); // 20.7, 20.2, 19.7, 19.2

    const nearlyEmpty = lock({ batteryPct: 0.5, behaviour: { drainPerActuationPct: 0.5 } });
    expect(nearlyEmpty.command('unlock', {}).reply).toMatchObject({ ok: true });
    expect(nearlyEmpty.command('lock', {}).reply).toEqual({ ok: false, error: 'battery_depleted' });
    expect(nearlyEmpty.state()['lock']).toBe('unlocked');
  });

  it('clears and re-raises low battery when the threshold is reconfigured', () => {
    const l = lock({ batteryPct: 30 });
    expect(l.state()['batteryLow']).toBe(false);
    const raised = l.configure({ lowBatteryPct: 40 });
    expect(raised.applied).toEqual(['lowBatteryPct']);
    expect(events(raised.outputs)).toEqual([{ name: 'lowBattery', batteryPct: 30 }]);
    expect(l.configure({ lowBatteryPct: 10 }).outputs).toEqual([{ type: 'state', state: l.state() }]);
    expect(l.state()['batteryLow']).toBe(false);
  });
});

describe('lock timers and events', () => {
  it('relocks itself autoRelockS after being unlocked with the door closed', () => {
    const l = lock({ config: { autoRelockS: 30 } });
    l.command('unlock', {});
    expect(l.step(29 * SECOND).filter((o) => o.type !== 'telemetry')).toEqual([]);
    const relock = l.step(SECOND);
    expect(events(relock)).toEqual([{ name: 'locked', source: 'autoRelock' }]);
    expect(l.state()['lock']).toBe('locked');
  });

  it('restarts the relock timer when the door opens and closes; 0 turns it off', () => {
    const l = lock({ config: { autoRelockS: 30 } });
    l.command('unlock', {});
    l.step(20 * SECOND);
    expect(events(l.openDoor())).toEqual([{ name: 'doorOpened' }]);
    l.step(120 * SECOND);
    expect(l.state()['lock']).toBe('unlocked');
    l.closeDoor();
    l.step(29 * SECOND);
    expect(l.state()['lock']).toBe('unlocked');
    l.step(SECOND);
    expect(l.state()['lock']).toBe('locked');

    const never = lock({ config: { autoRelockS: 0 } });
    never.command('unlock', {});
    never.step(3_600 * SECOND);
    expect(never.state()['lock']).toBe('unlocked');
  });

  it('jams: the actuation fails, the state says jammed, auto-relock waits, a later command retries', () => {
    const l = lock({ lock: 'unlocked', behaviour: { jamProbability: 1 } });
    const jam = l.command('lock', {});
    expect(jam.reply).toEqual({ ok: false, error: 'jammed' });
    expect(events(jam.outputs)).toEqual([{ name: 'jammed', target: 'locked', source: 'command' }]);
    expect(states(jam.outputs)).toEqual([{ lock: 'jammed', door: 'closed', batteryPct: 99.5, batteryLow: false }]);
    expect(events(l.step(120 * SECOND))).toEqual([]);

    const flaky = lock({ seed: 21, lock: 'unlocked', behaviour: { jamProbability: 0.5 } });
    const replies = [];
    for (let i = 0; i < 30 && replies.at(-1)?.ok !== true; i++) replies.push(flaky.command('lock', {}).reply);
    expect(replies.at(-1)).toMatchObject({ ok: true, result: { lock: 'locked' } });
    expect(replies.slice(0, -1).every((r) => !r.ok && r.error === 'jammed')).toBe(true);
    expect(flaky.batteryPct).toBeCloseTo(100 - 0.5 * replies.length, 6);
  });

  it('reports a forced entry (door opened while locked) and tamper events', () => {
    const l = lock();
    expect(events(l.openDoor())).toEqual([{ name: 'tamper', reason: 'forced_entry' }, { name: 'doorOpened' }]);
    expect(l.tamper('cover_removed')).toEqual([{ type: 'event', name: 'tamper', data: { reason: 'cover_removed' } }]);
  });

  it('simulates visits: manual unlock, door open, door close, auto-relock — deterministically', () => {
    const runFor = (seed: number) => {
      const l = new Lock({ seed, behaviour: { activityPerHour: 30, tamperPerHour: 0, jamProbability: 0 } });
      const outs: DeviceOutput[] = [];
      for (let s = 0; s < 7_200; s++) outs.push(...l.step(SECOND));
      return events(outs);
    };
    const evs = runFor(5);
    expect(evs).toEqual(runFor(5));
    expect(evs).not.toEqual(runFor(6));
    const names = evs.map((e) => e.name);
    const visits = names.filter((n) => n === 'doorOpened').length;
    expect(visits).toBeGreaterThan(20); // ~60 expected in two hours at 30/h, minus time spent busy
    expect(names.filter((n) => n === 'doorClosed').length).toBeGreaterThanOrEqual(visits - 1);
    expect(names).not.toContain('tamper'); // visitors unlock first: never a forced entry
    expect(evs).toContainEqual({ name: 'unlocked', source: 'manual' });
    expect(evs).toContainEqual({ name: 'locked', source: 'autoRelock' });
  });
});

describe('lock telemetry and config', () => {
  it('publishes telemetry on the reporting interval', () => {
    const l = lock({ config: { reportingIntervalS: 15 } });
    const tele = l.step(60 * SECOND).filter((o) => o.type === 'telemetry');
    expect(tele).toHaveLength(4);
    expect(tele[0]).toEqual({ type: 'telemetry', data: { batteryPct: 100, lock: 'locked', door: 'closed', actuations: 0 } });
  });

  it('applies valid keys, rejects invalid ones and unknown keys, never throws', () => {
    const l = lock();
    expect(l.configure({ autoRelockS: 10, reportingIntervalS: -1, lowBatteryPct: 'x', volume: 3 })).toMatchObject({
      applied: ['autoRelockS'],
      rejected: ['reportingIntervalS', 'lowBatteryPct', 'volume'],
    });
    expect(l.configure([1, 2]).rejected).toEqual(['config']);
    l.command('unlock', {});
    l.step(10 * SECOND);
    expect(l.state()['lock']).toBe('locked');
  });
});
