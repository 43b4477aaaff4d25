import { describe, expect, it } from 'vitest';
import { buildReport, formatSummary, percentile, reportProblems, type FleetMeasurements } from '../../simulator/src/report.ts';
import { createProgress, type ProgressSnapshot } from '../../simulator/src/progress.ts';

const measurements: FleetMeasurements = {
  requested: 40,
  provisioned: 40,
  connected: 40,
  connectLatenciesMs: Array.from({ length: 100 }, (_, i) => i + 1.4),
  telemetrySent: 1200,
  telemetryReceived: 1200,
  telemetryWindowMs: 12_500,
  commandsSent: 20,
  commandsOk: 20,
  commandsFailed: 0,
  commandLatenciesMs: [4, 8, 6],
  tokenRefreshes: 80,
  reconnects: 0,
  authFailures: 0,
  rogueAttempted: 6,
  rogueRefused: 6,
  signedVerified: 1200,
  tamperPublished: 8,
  tamperDetected: 8,
  durationMs: 17_600,
};

describe('report', () => {
  it('nearest-rank percentiles, rounded; 0 for no samples', () => {
    expect(percentile([], 99)).toBe(0);
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([5, 1, 3], 100)).toBe(5);
    expect(percentile([5, 1, 3], 0)).toBe(1);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99)).toBe(99);
  });

  it('has exactly the fields of simulator.md §Measurements, all integers', () => {
    const r = buildReport(measurements);
    expect(r).toEqual({
      devices: { requested: 40, provisioned: 40, connected: 40 },
      connect: { p50Ms: 50, p95Ms: 95, p99Ms: 99 }, // samples 1.4 … 100.4
      telemetry: { sent: 1200, received: 1200, perSecond: 96 },
      commands: { sent: 20, ok: 20, failed: 0, p50Ms: 6, p99Ms: 8 },
      tokenRefreshes: 80,
      reconnects: 0,
      authFailures: 0,
      rogue: { attempted: 6, refused: 6 },
      signed: { verified: 1200, tampered: 8, detected: 8 },
      durationS: 18,
    });
    const numbers = JSON.stringify(r).match(/-?\d+(\.\d+)?/g)!;
    expect(numbers.every((n) => Number.isInteger(Number(n)))).toBe(true);
    expect(reportProblems(r)).toEqual([]);
    expect(formatSummary(r)).toContain('PASS');
  });

  it('fails a run with an unconnected device, lost telemetry, an admitted rogue or an undetected tampered copy', () => {
    const r = buildReport({ ...measurements, connected: 39, telemetryReceived: 1199, rogueRefused: 5, tamperDetected: 7 });
    expect(reportProblems(r)).toEqual(['devices_not_connected', 'telemetry_lost', 'rogue_admitted', 'tampering_undetected']);
    expect(formatSummary(r)).toMatch(/tampered copies 7 detected \/ 8 published/);
    expect(formatSummary(r)).toContain('FAIL');
    expect(reportProblems(buildReport({ ...measurements, telemetryWindowMs: 0 })).length).toBe(0);
  });
});

describe('progress', () => {
  const snap = (n: number): ProgressSnapshot => ({
    phase: 'steady', connected: n, total: 40, telemetryReceived: n * 10, commandsSent: 1, commandsOk: 1, tokenRefreshes: 0, rogueRefused: 0, rogueAttempted: 0,
  });

  it('redraws in place at most maxPerSecond times a second', () => {
    let now = 0;
    const writes: string[] = [];
    const p = createProgress({ write: (t) => writes.push(t), clock: () => now, enabled: true, maxPerSecond: 4 });
    for (let i = 0; i < 100; i++) {
      now = i * 10; // 100 updates over one second
      p.update(snap(i));
    }
    expect(p.draws).toBe(4);
    expect(writes.every((w) => w.startsWith('\r'))).toBe(true);
    expect(writes[1]).toContain('connected 25/40');
    p.finish();
    expect(writes.at(-1)).toBe('\r\x1b[2K');
  });

  it('shows the telemetry rate averaged over the last two seconds', () => {
    let now = 0;
    const writes: string[] = [];
    const p = createProgress({ write: (t) => writes.push(t), clock: () => now, enabled: true, maxPerSecond: 4 });
    // 100 messages per second, arriving in bursts at whole seconds only
    for (let ms = 0; ms <= 6_000; ms += 250) {
      now = ms;
      p.update({ ...snap(40), telemetryReceived: Math.floor(ms / 1000) * 100 });
    }
    expect(writes.at(-1)).toMatch(/telemetry 600 \(100 msg\/s\)/);
    now = 6_250; // between bursts a per-draw rate would read 0
    p.update({ ...snap(40), telemetryReceived: 600 });
    expect(writes.at(-1)).toMatch(/\((8\d|9\d|1\d\d) msg\/s\)/);
  });

  it('draws nothing when disabled (not a TTY, or --json)', () => {
    const writes: string[] = [];
    const p = createProgress({ write: (t) => writes.push(t), clock: () => 0, enabled: false });
    p.update(snap(1));
    p.finish();
    expect(writes).toEqual([]);
    expect(p.draws).toBe(0);
  });
});
