import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet, type FleetResult } from '../../simulator/src/fleet.ts';
import { startTestStack, type TestStack } from './helpers/stack.ts';

describe('a small fleet end to end (real SQLite, broker, HTTP)', () => {
  let stack: TestStack;
  let run: FleetResult;

  beforeAll(async () => {
    stack = await startTestStack();
    run = await runFleet({
      httpUrl: stack.httpUrl,
      mqttUrl: stack.mqttUrl,
      adminToken: stack.adminToken,
      thermostats: 20,
      locks: 20,
      durationS: 8,
      rampPerS: 100,
      tokenTtlS: 4, // refreshed at 80–90% of the lifetime: about twice per device during the run
      commandsPerS: 5,
      rogue: 6,
      telemetryIntervalS: 1,
      seed: 7,
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
  });

  it('connects every device with zero auth failures', () => {
    expect(run.report.devices).toEqual({ requested: 40, provisioned: 40, connected: 40 });
    expect(run.report.authFailures).toBe(0);
    expect(run.details.connectFailures).toEqual({});
    expect(run.report.connect.p50Ms).toBeGreaterThan(0);
    expect(run.report.connect.p99Ms).toBeGreaterThanOrEqual(run.report.connect.p50Ms);
  });

  it('loses no telemetry: received (unique device, seq pairs) = sent', () => {
    expect(run.report.telemetry.sent).toBeGreaterThan(40 * 8);
    expect(run.report.telemetry.received).toBe(run.report.telemetry.sent);
    expect(run.details.publishFailures).toBe(0);
  });

  it('refreshes tokens mid-run', () => {
    expect(run.report.tokenRefreshes).toBeGreaterThanOrEqual(40);
  });

  it('gets every command answered', () => {
    expect(run.report.commands.sent).toBeGreaterThan(20);
    expect(run.report.commands.ok).toBe(run.report.commands.sent);
    expect(run.report.commands.failed).toBe(0);
  });

  it('refuses every rogue: forged, expired and cross-device tokens', () => {
    expect(run.report.rogue).toEqual({ attempted: 6, refused: 6 });
    expect(new Set(run.details.rogues.map((r) => r.kind))).toEqual(new Set(['forged', 'expired', 'cross-device']));
    expect(run.details.rogues.every((r) => r.code === 'bad_credentials')).toBe(true);
  });

  it('closes every session at the end and logs no errors', () => {
    expect(stack.errors).toEqual([]);
    expect(stack.sessionCount).toBe(0);
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
