import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetResult } from '../../simulator/src/fleet.ts';
import { resolveFleetOptions } from '../../simulator/src/fleet-options.ts';
import { TAMPER_KINDS } from '../../simulator/src/tampering.ts';
import { runFleetUntil, startTestStack, type TestStack } from './helpers/stack.ts';

/**
 * A signed fleet with the tampering-broker rogue (docs/simulator.md §Signed fleets), driven by
 * counts like fleet.test.ts: the steady state ends once TELEMETRY messages verified and COMMANDS
 * signed replies came back; `durationS` is only a cap.
 */
const DEVICES = 8;
const TELEMETRY = DEVICES * 6;
const COMMANDS = 6;
const TAMPER = 12;
const CAP_S = 90;

describe('a signed fleet and a tampering broker (real SQLite, broker, HTTP)', () => {
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
        commandsPerS: 3,
        telemetryIntervalS: 1,
        signed: true,
        tamper: TAMPER,
        seed: 3,
      },
      (s) => s.telemetryReceived >= TELEMETRY && s.commandsOk >= COMMANDS,
    ));
  }, (CAP_S + 60) * 1000);

  afterAll(async () => {
    await stack?.close();
  });

  it('reached its counts before the cap, every device connected', () => {
    expect(endedByCounts).toBe(true);
    expect(run.report.devices).toEqual({ requested: DEVICES, provisioned: DEVICES, connected: DEVICES });
  });

  it('every telemetry message verified at the counting service account, none lost', () => {
    expect(run.report.telemetry.sent).toBeGreaterThanOrEqual(TELEMETRY);
    expect(run.report.telemetry.received).toBe(run.report.telemetry.sent);
    // each verified message counted once (a QoS 1 redelivery would be refused as a replay instead)
    expect(run.report.signed.verified).toBe(run.report.telemetry.received);
  });

  it('every tampered copy the rogue published was refused, of every kind', () => {
    expect(run.report.signed).toMatchObject({ tampered: TAMPER, detected: TAMPER });
    expect(run.details.tampered).toEqual(Object.fromEntries(TAMPER_KINDS.map((k) => [k, TAMPER / TAMPER_KINDS.length])));
    expect(run.details.tamperFailures).toBe(0);
  });

  it('devices answer commands with signed replies', () => {
    expect(run.report.commands.ok).toBe(run.report.commands.sent);
    expect(run.report.commands.ok).toBeGreaterThanOrEqual(COMMANDS);
  });

  it('logs no errors', () => {
    expect(stack.errors).toEqual([]);
  });
});

describe('signed fleet options', () => {
  const o = { httpUrl: 'http://127.0.0.1:9', mqttUrl: 'mqtt://127.0.0.1:9', adminToken: 'x'.repeat(20) };
  it('tamper needs signed and two devices', () => {
    expect(() => resolveFleetOptions({ ...o, tamper: 3 })).toThrow(/tamper needs signed/);
    expect(() => resolveFleetOptions({ ...o, tamper: 3, signed: true, thermostats: 1, locks: 0 })).toThrow(/at least 2 devices/);
    expect(() => resolveFleetOptions({ ...o, signed: 'yes' as never })).toThrow(/signed must be a boolean/);
    expect(resolveFleetOptions({ ...o, tamper: 3, signed: true }).tamper).toBe(3);
  });
});
