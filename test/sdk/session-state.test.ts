/** The session's state machine (device-sdk/src/session/session-state.ts): what a lost connection means in each state. */
import { describe, expect, it } from 'vitest';
import { causeAfterLoss, hasDialled, reportedOnline, type SessionState } from '../../device-sdk/src/session/session-state.ts';

const states: Record<string, SessionState> = {
  idle: { name: 'idle' },
  'preparing first': { name: 'preparing', cause: 'first' },
  'preparing retry': { name: 'preparing', cause: 'retry' },
  'preparing refresh': { name: 'preparing', cause: 'refresh' },
  'awaiting first': { name: 'awaiting-connack', cause: 'first', accepted: false },
  'awaiting outage': { name: 'awaiting-connack', cause: 'outage', accepted: false },
  'awaiting refresh': { name: 'awaiting-connack', cause: 'refresh', accepted: true },
  online: { name: 'online' },
  draining: { name: 'draining' },
  disconnecting: { name: 'disconnecting' },
  'backing-off first': { name: 'backing-off', cause: 'first' },
  'backing-off retry': { name: 'backing-off', cause: 'retry' },
};

describe('session states', () => {
  it.each([
    // state, was reported online, cause of the next attempt, a CONNECT was ever sent
    ['idle', false, 'first', false],
    ['preparing first', false, 'retry', false],
    ['preparing retry', false, 'retry', true],
    ['preparing refresh', true, 'outage', true],
    ['awaiting first', false, 'retry', true],
    ['awaiting outage', false, 'outage', true],
    ['awaiting refresh', true, 'outage', true],
    ['online', true, 'outage', true],
    ['draining', true, 'outage', true],
    ['disconnecting', false, 'outage', true],
    ['backing-off first', false, 'retry', false],
    ['backing-off retry', false, 'retry', true],
  ] as const)('%s', (name, online, cause, dialled) => {
    const s = states[name]!;
    expect(reportedOnline(s)).toBe(online);
    expect(causeAfterLoss(s)).toBe(cause);
    expect(hasDialled(s)).toBe(dialled);
  });
});
