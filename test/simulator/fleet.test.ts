import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runFleet, type FleetResult } from '../../simulator/src/fleet.ts';
import { runFleetUntil, startTestStack, type TestStack } from './helpers/stack.ts';

/**
 * Driven by counts, not by wall time: the steady state ends (through the run's abort signal) once
 * the service account has received TELEMETRY messages, COMMANDS commands were answered and the
 * fleet refreshed its tokens REFRESHES times, however long a loaded machine takes to get there.
 * `durationS` is only a cap; a run that hits it fails the count assertions below.
 */
const DEVICES = 40;
const TELEMETRY = DEVICES * 8;
const COMMANDS = 20;
const REFRESHES = DEVICES;
const CAP_S = 90;

describe('a small fleet end to end (real SQLite, broker, HTTP)', () => {
  let stack: TestStack;
  let run: FleetResult;
  let endedByCounts: boolean;

  beforeAll(async () => {
    stack = await startTestStack();
    ({ run, endedByCounts } = await runFleetUntil(
      stack,
      {
        thermostats: DEVICES / 2,
        locks: DEVICES / 2,
        durationS: CAP_S,
        rampPerS: 100,
        tokenTtlS: 4, // refreshed at 80–90% of the lifetime: every ~3.5 s per device
        commandsPerS: 5,
        rogue: 6,
        telemetryIntervalS: 1,
        seed: 7,
      },
      (s) => s.telemetryReceived >= TELEMETRY && s.commandsOk >= COMMANDS && s.tokenRefreshes >= REFRESHES,
    ));
  }, (CAP_S + 60) * 1000);

  afterAll(async () => {
    await stack?.close();
  });

  it('reached every count it was driven to before the cap', () => {
    expect(endedByCounts).toBe(true);
  });

  it('connects every device with zero auth failures', () => {
    expect(run.report.devices).toEqual({ requested: DEVICES, provisioned: DEVICES, connected: DEVICES });
    expect(run.report.authFailures).toBe(0);
    expect(run.details.connectFailures).toEqual({});
    expect(run.report.connect.p50Ms).toBeGreaterThanOrEqual(0);
    expect(run.report.connect.p99Ms).toBeGreaterThanOrEqual(run.report.connect.p50Ms);
  });

  it('loses no telemetry: received (unique device, seq pairs) = sent', () => {
    expect(run.report.telemetry.sent).toBeGreaterThanOrEqual(TELEMETRY);
    expect(run.report.telemetry.received).toBe(run.report.telemetry.sent);
    expect(run.details.publishFailures).toBe(0);
  });

  it('refreshes tokens mid-run', () => {
    expect(run.report.tokenRefreshes).toBeGreaterThanOrEqual(REFRESHES);
  });

  it('gets every command answered', () => {
    expect(run.report.commands.sent).toBeGreaterThanOrEqual(COMMANDS);
    expect(run.report.commands.ok).toBe(run.report.commands.sent);
    expect(run.report.commands.failed).toBe(0);
  });

  it('refuses every rogue: forged, expired and cross-device tokens', () => {
    expect(run.report.rogue).toEqual({ attempted: 6, refused: 6 });
    expect(new Set(run.details.rogues.map((r) => r.kind))).toEqual(new Set(['forged', 'expired', 'cross-device']));
    expect(run.details.rogues.every((r) => r.code === 'bad_credentials')).toBe(true);
  });

  it('closes every session at the end and logs no errors', async () => {
    expect(stack.errors).toEqual([]);
    // the fleet has closed its clients; the broker sees each DISCONNECT when a loaded machine gets to it
    await vi.waitFor(() => expect(stack.sessionCount).toBe(0), { timeout: 15_000, interval: 50 });
    expect(stack.errors).toEqual([]);
  });
});

describe('fleet options', () => {
  it('an audience the SDK cannot mint for is caller misuse, found before anything is registered', async () => {
    // the API address is unreachable: a run that got as far as registering would fail with network_error
    const o = { httpUrl: 'http://127.0.0.1:9', mqttUrl: 'mqtt://127.0.0.1:9', adminToken: 'x'.repeat(20) };
    await expect(runFleet({ ...o, audience: '' })).rejects.toThrow(TypeError);
    await expect(runFleet({ ...o, audience: 'a'.repeat(257) })).rejects.toThrow(/audience/);
  });
});
