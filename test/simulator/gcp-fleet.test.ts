/**
 * `--gcp` (issue 14): Cloud IoT Core-dialect thermostats mixed with native devices in one run and one
 * report — imported as a gcloud export, connected with path client ids and RS256/ES256 tokens, their
 * events counted by the same service account as native telemetry, commands delivered through the
 * HTTP API, config received on SUBSCRIBE. Driven by counts, `durationS` is only a cap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetResult } from '../../simulator/src/fleet.ts';
import { runFleetUntil, startTestStack, type TestStack } from './helpers/stack.ts';

const GCP = 6;
const NATIVE = 4;
const TELEMETRY = (GCP + NATIVE) * 4;
const COMMANDS = 10;
const CAP_S = 90;

describe('a fleet mixing Cloud IoT Core and native devices (real SQLite, broker, HTTP)', () => {
  let stack: TestStack;
  let run: FleetResult;
  let endedByCounts: boolean;

  beforeAll(async () => {
    stack = await startTestStack({ gcpProjects: ['latchkey-sim'] });
    ({ run, endedByCounts } = await runFleetUntil(
      stack,
      {
        thermostats: NATIVE / 2,
        locks: NATIVE / 2,
        gcp: GCP,
        durationS: CAP_S,
        rampPerS: 100,
        commandsPerS: 5,
        telemetryIntervalS: 1,
        seed: 11,
      },
      (s) => s.telemetryReceived >= TELEMETRY && s.commandsOk >= COMMANDS,
    ));
  }, (CAP_S + 60) * 1000);

  afterAll(async () => {
    await stack?.close();
  });

  it('reached its counts before the cap, with every device connected and no auth failure', () => {
    expect(endedByCounts).toBe(true);
    expect(run.report.devices).toEqual({ requested: GCP + NATIVE, provisioned: GCP + NATIVE, connected: GCP + NATIVE });
    expect(run.report.authFailures).toBe(0);
    expect(stack.errors).toEqual([]);
  });

  it('reports the Cloud IoT Core devices in the same report: connected, telemetry received = sent, commands and configs received', () => {
    const gcp = run.report.gcp;
    expect(gcp).toBeDefined();
    expect(gcp?.requested).toBe(GCP);
    expect(gcp?.connected).toBe(GCP);
    expect(gcp?.telemetrySent).toBeGreaterThan(0);
    expect(gcp?.telemetryReceived).toBe(gcp?.telemetrySent);
    expect(gcp?.configsReceived).toBeGreaterThanOrEqual(GCP);
    expect(gcp?.commandsReceived).toBeGreaterThan(0);
    expect(run.report.telemetry.received).toBe(run.report.telemetry.sent);
    expect(run.report.commands.ok).toBe(run.report.commands.sent);
  });
});
