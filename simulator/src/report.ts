/**
 * The simulation report (simulator.md §Measurements, `--json`): its exact shape, how it is computed from
 * the fleet's measurements, the summary table, and the verdict that sets the exit code.
 */

/** simulator.md §Measurements: the report, all counts integers and latencies in milliseconds. */
export interface SimulationReport {
  devices: { requested: number; provisioned: number; connected: number };
  connect: { p50Ms: number; p95Ms: number; p99Ms: number };
  telemetry: { sent: number; received: number; perSecond: number };
  commands: { sent: number; ok: number; failed: number; p50Ms: number; p99Ms: number };
  tokenRefreshes: number;
  reconnects: number;
  authFailures: number;
  rogue: { attempted: number; refused: number };
  /** `--signed`: telemetry messages that verified at the counting service account; `--tamper`: the rogue's copies published and refused there. */
  signed: { verified: number; tampered: number; detected: number };
  durationS: number;
  /**
   * Present when the run mixed in Cloud IoT Core devices (`--gcp`): their share of the counts above
   * (they are counted there too: one fleet), and the config and commands they received.
   */
  gcp?: { requested: number; connected: number; telemetrySent: number; telemetryReceived: number; commandsReceived: number; configsReceived: number };
}

/** What the fleet measured during a run. */
export interface FleetMeasurements {
  requested: number;
  provisioned: number;
  connected: number;
  /** Time from starting a device's connect to its CONNACK 0, ms, one entry per device. */
  connectLatenciesMs: readonly number[];
  telemetrySent: number;
  /** Unique (device, sequence number) pairs that arrived at the service account. */
  telemetryReceived: number;
  /** Length of the window telemetry was measured over (first connect to end of steady state), ms. */
  telemetryWindowMs: number;
  commandsSent: number;
  /** Commands the device answered (HTTP 200 with its reply, whatever its verdict). */
  commandsOk: number;
  commandsFailed: number;
  commandLatenciesMs: readonly number[];
  tokenRefreshes: number;
  reconnects: number;
  /** Refused connects of the fleet's own, legitimate devices and service account. */
  authFailures: number;
  rogueAttempted: number;
  rogueRefused: number;
  /** Signed messages that verified at the counting service account. */
  signedVerified: number;
  /** Altered copies the tampering rogue published (the broker acknowledged). */
  tamperPublished: number;
  /** Of those, the copies the counting service account refused. */
  tamperDetected: number;
  /** The whole run, provisioning to the last count, ms. */
  durationMs: number;
  /** The Cloud IoT Core devices' share, when the run had any. */
  gcp?: SimulationReport['gcp'] | null;
}

/**
 * Nearest-rank percentile (`p` in 0..100) of unsorted samples, rounded to whole ms; 0 when empty.
 *
 * @example
 * ```ts
 * percentile([5, 1, 3], 50) // 3
 * ```
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return Math.round(sorted[Math.min(rank, sorted.length) - 1]!);
}

/**
 * Builds the report from the measurements (integers only).
 *
 * @example
 * ```ts
 * process.stdout.write(JSON.stringify(buildReport(measurements)) + '\n');
 * ```
 */
export function buildReport(m: FleetMeasurements): SimulationReport {
  const int = (n: number) => Math.max(0, Math.round(n));
  const report: SimulationReport = {
    devices: { requested: int(m.requested), provisioned: int(m.provisioned), connected: int(m.connected) },
    connect: {
      p50Ms: percentile(m.connectLatenciesMs, 50),
      p95Ms: percentile(m.connectLatenciesMs, 95),
      p99Ms: percentile(m.connectLatenciesMs, 99),
    },
    telemetry: {
      sent: int(m.telemetrySent),
      received: int(m.telemetryReceived),
      perSecond: m.telemetryWindowMs > 0 ? int((m.telemetryReceived * 1000) / m.telemetryWindowMs) : 0,
    },
    commands: {
      sent: int(m.commandsSent),
      ok: int(m.commandsOk),
      failed: int(m.commandsFailed),
      p50Ms: percentile(m.commandLatenciesMs, 50),
      p99Ms: percentile(m.commandLatenciesMs, 99),
    },
    tokenRefreshes: int(m.tokenRefreshes),
    reconnects: int(m.reconnects),
    authFailures: int(m.authFailures),
    rogue: { attempted: int(m.rogueAttempted), refused: int(m.rogueRefused) },
    signed: { verified: int(m.signedVerified), tampered: int(m.tamperPublished), detected: int(m.tamperDetected) },
    durationS: int(m.durationMs / 1000),
  };
  if (m.gcp !== undefined && m.gcp !== null) {
    const g = m.gcp;
    report.gcp = {
      requested: int(g.requested),
      connected: int(g.connected),
      telemetrySent: int(g.telemetrySent),
      telemetryReceived: int(g.telemetryReceived),
      commandsReceived: int(g.commandsReceived),
      configsReceived: int(g.configsReceived),
    };
  }
  return report;
}

/** Why a run failed (simulator.md §Measurements: exit non-zero). */
export type ReportProblem = 'devices_not_connected' | 'telemetry_lost' | 'rogue_admitted' | 'tampering_undetected';

/**
 * The problems that make `latchkey simulate` exit non-zero: a device failed to connect,
 * telemetry was lost, a rogue client got in, or a tampered copy was not refused. Empty when the run passed.
 *
 * @example
 * ```ts
 * process.exitCode = reportProblems(report).length === 0 ? 0 : 1;
 * ```
 */
export function reportProblems(r: SimulationReport): ReportProblem[] {
  const problems: ReportProblem[] = [];
  if (r.devices.connected < r.devices.requested) problems.push('devices_not_connected');
  if (r.telemetry.received < r.telemetry.sent) problems.push('telemetry_lost');
  if (r.rogue.refused < r.rogue.attempted) problems.push('rogue_admitted');
  if (r.signed.detected < r.signed.tampered) problems.push('tampering_undetected');
  return problems;
}

/**
 * The human summary printed at the end of a run (not with `--json`).
 *
 * @example
 * ```ts
 * process.stdout.write(formatSummary(report));
 * ```
 */
export function formatSummary(r: SimulationReport): string {
  const lost = r.telemetry.sent - r.telemetry.received;
  const rows: [string, string][] = [
    ['devices', `${r.devices.connected} connected / ${r.devices.provisioned} provisioned / ${r.devices.requested} requested`],
    ['connect', `p50 ${r.connect.p50Ms} ms   p95 ${r.connect.p95Ms} ms   p99 ${r.connect.p99Ms} ms`],
    ['telemetry', `${r.telemetry.received} received / ${r.telemetry.sent} sent (${lost > 0 ? `${lost} lost` : 'none lost'}), ${r.telemetry.perSecond} msg/s`],
    ['commands', `${r.commands.ok} answered / ${r.commands.sent} sent, ${r.commands.failed} failed   p50 ${r.commands.p50Ms} ms   p99 ${r.commands.p99Ms} ms`],
    ['tokens', `${r.tokenRefreshes} refreshes, ${r.reconnects} reconnects, ${r.authFailures} auth failures`],
    ['rogue', `${r.rogue.refused} refused / ${r.rogue.attempted} attempted`],
    ['signed', `${r.signed.verified} verified; tampered copies ${r.signed.detected} detected / ${r.signed.tampered} published`],
    ...(r.gcp === undefined
      ? []
      : ([['cloud iot', `${r.gcp.connected} / ${r.gcp.requested} connected, telemetry ${r.gcp.telemetryReceived} received / ${r.gcp.telemetrySent} sent, ${r.gcp.configsReceived} configs, ${r.gcp.commandsReceived} commands`]] as [string, string][])),
    ['duration', `${r.durationS} s`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const problems = reportProblems(r);
  const verdict = problems.length === 0 ? 'PASS' : `FAIL: ${problems.join(', ')}`;
  return `${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n  ${'result'.padEnd(width)}  ${verdict}\n`;
}
