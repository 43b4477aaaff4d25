/**
 * The state of one fleet run, and what is read from it: the progress snapshot and the result
 * (the docs/simulator.md report plus the details that explain a failed run).
 */
import type { DeviceKeyPair, ServiceClient } from '@latchkey/device-sdk';
import type { CommandDriver } from './command-driver.ts';
import type { FleetOptions } from './fleet-options.ts';
import type { ProgressSnapshot } from './progress.ts';
import type { ProvisioningApi } from './provisioning-api.ts';
import { buildReport, type FleetMeasurements, type SimulationReport } from './report.ts';
import type { RogueResult } from './rogues.ts';
import type { GcpSimulatedDevice } from './gcp/gcp-device.ts';
import type { TamperingBroker, TamperKind } from './tampering.ts';
import type { FleetCounters, SimulatedDevice } from './simulated-device.ts';
import type { TelemetryCounter } from './telemetry-counter.ts';

/** How devices are registered: `POST /v1/devices:batch`, or one enrollment token used by each. */
export type ProvisioningMode = 'batch' | 'enroll';

/** Injected into a run. */
export interface FleetDeps {
  /** Epoch ms. Default `Date.now`. */
  clock?: () => number;
  /** Receives the counters about four times a second (the progress display). */
  onProgress?: (s: ProgressSnapshot) => void;
  /**
   * Aborting ends the steady state early: rogue clients not yet started connect at once, and the
   * run still drains and reports.
   */
  signal?: AbortSignal;
}

/** The report plus what explains a failed run. */
export interface FleetResult {
  report: SimulationReport;
  details: {
    runId: string;
    connectFailures: Record<string, number>;
    commandFailures: Record<string, number>;
    rogues: RogueResult[];
    duplicates: number;
    publishFailures: number;
    /** Signed fleets: messages the counting service account refused that were no rogue's copy, by code (a QoS 1 redelivery is `message_replayed`). */
    refusedOther: Record<string, number>;
    /** The tampering rogue's copies by kind, and publishes of it that failed. */
    tampered: Record<TamperKind, number> | null;
    tamperFailures: number;
  };
}

/** A device of the fleet: native (the SDK), or speaking the Cloud IoT Core dialect. */
export type FleetDevice = SimulatedDevice | GcpSimulatedDevice;

/** Everything one run holds. */
export interface Run {
  o: Readonly<FleetOptions>;
  mode: ProvisioningMode;
  clock: () => number;
  deps: FleetDeps;
  api: ProvisioningApi;
  runId: string;
  serviceName: string;
  devices: FleetDevice[];
  provisioned: FleetDevice[];
  counters: FleetCounters;
  counter: TelemetryCounter;
  service: ServiceClient | null;
  serviceKey: DeviceKeyPair;
  driver: CommandDriver | null;
  rogues: RogueResult[];
  phase: string;
  ticker: NodeJS.Timeout | null;
  startedAt: number;
  firstConnectAt: number | null;
  telemetryStoppedAt: number | null;
  /** Signed fleets: verifications in flight, messages that verified, refusals not matched to a rogue copy. */
  signed: { verifying: number; verified: number; refused: Map<string, number> };
  tamperer: TamperingBroker | null;
  tampererClient: ServiceClient | null;
}

/** The counters the progress line shows. */
export function snapshot(run: Run): ProgressSnapshot {
  return {
    phase: run.phase,
    connected: run.provisioned.filter((d) => d.connectLatencyMs !== null).length,
    total: run.devices.length,
    telemetryReceived: run.counter.received,
    commandsSent: run.driver?.sent ?? 0,
    commandsOk: run.driver?.ok ?? 0,
    tokenRefreshes: run.provisioned.reduce((n, d) => n + d.stats.tokenRefreshes, 0),
    rogueRefused: run.rogues.filter((r) => r.refused).length,
    rogueAttempted: run.rogues.length,
  };
}

/** The report (simulator.md §Measurements) and the details of a finished run. */
export function fleetResult(run: Run): FleetResult {
  const connected = run.provisioned.filter((d) => d.connectLatencyMs !== null);
  const stats = run.provisioned.map((d) => d.stats);
  const windowStart = run.firstConnectAt ?? run.clock();
  const report = buildReport({
    requested: run.devices.length,
    provisioned: run.provisioned.length,
    connected: connected.length,
    connectLatenciesMs: connected.map((d) => d.connectLatencyMs!),
    telemetrySent: run.counters.telemetrySent,
    telemetryReceived: run.counter.received,
    telemetryWindowMs: Math.max(0, (run.telemetryStoppedAt ?? run.clock()) - windowStart),
    commandsSent: run.driver?.sent ?? 0,
    commandsOk: run.driver?.ok ?? 0,
    commandsFailed: run.driver?.failed ?? 0,
    commandLatenciesMs: run.driver?.latenciesMs ?? [],
    tokenRefreshes: stats.reduce((n, s) => n + s.tokenRefreshes, 0),
    reconnects: stats.reduce((n, s) => n + s.reconnects, 0),
    authFailures: run.counters.authFailures,
    rogueAttempted: run.rogues.length,
    rogueRefused: run.rogues.filter((r) => r.refused).length,
    signedVerified: run.signed.verified,
    tamperPublished: run.tamperer?.published ?? 0,
    tamperDetected: run.tamperer?.detected ?? 0,
    durationMs: run.clock() - run.startedAt,
    gcp: run.o.gcp === 0 ? null : gcpMeasurements(run),
  });
  return {
    report,
    details: {
      runId: run.runId,
      connectFailures: Object.fromEntries(run.counters.connectFailures),
      commandFailures: Object.fromEntries(run.driver?.failures ?? []),
      rogues: run.rogues,
      duplicates: run.counter.duplicates,
      publishFailures: run.counters.publishFailures,
      refusedOther: Object.fromEntries(run.signed.refused),
      tampered: run.tamperer?.byKind ?? null,
      tamperFailures: run.tamperer?.failed ?? 0,
    },
  };
}

/** The Cloud IoT Core devices' share of the run (the report's `gcp`). */
function gcpMeasurements(run: Run): NonNullable<FleetMeasurements['gcp']> {
  const gcp = run.devices.filter((d): d is GcpSimulatedDevice => d.dialect === 'gcp');
  return {
    requested: gcp.length,
    connected: gcp.filter((d) => d.connectLatencyMs !== null).length,
    telemetrySent: gcp.reduce((n, d) => n + d.telemetrySent, 0),
    telemetryReceived: gcp.reduce((n, d) => n + run.counter.receivedFrom(d.id), 0),
    commandsReceived: gcp.reduce((n, d) => n + d.commandsReceived, 0),
    configsReceived: gcp.reduce((n, d) => n + d.configsReceived, 0),
  };
}
