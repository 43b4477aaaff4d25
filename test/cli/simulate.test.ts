import { describe, expect, it } from 'vitest';
import { errorLine, runLatchkey } from './cli-process.ts';

describe('latchkey simulate (docs/configuration.md), wired to the simulator', { timeout: 120_000 }, () => {
  it('--embedded runs a small fleet on the up composition and prints the --json report', async () => {
    const r = await runLatchkey(['simulate', '--embedded', '--thermostats', '2', '--locks', '1', '--duration', '2', '--commands-per-s', '2', '--rogue', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.devices).toEqual({ requested: 3, provisioned: 3, connected: 3 });
    expect(report.telemetry.received).toBe(report.telemetry.sent);
    expect(report.rogue).toEqual({ attempted: 2, refused: 2 });
  });

  it('a usage mistake is one line and exit 2', async () => {
    const r = await runLatchkey(['simulate', '--thermostats', 'many']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)?.code).toBe('usage');
  });
});
