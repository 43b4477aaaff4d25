import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/src/run-cli.ts';

const cwd = mkdtempSync(path.join(tmpdir(), 'latchkey-sim-cli-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** `latchkey simulate …` in this process (the embedded stack is the `latchkey up` composition), its output captured. */
async function simulate(argv: string[], o: { env?: Record<string, string>; isTTY?: boolean } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const line = (to: string[]) => (t: string) => to.push(t.endsWith('\n') ? t : `${t}\n`);
  const code = await runCli(['simulate', ...argv], { env: o.env ?? {}, cwd, out: line(out), err: line(err), write: (t) => out.push(t), isTTY: o.isTTY ?? false });
  return { code, out: out.join(''), err: err.join('') };
}

describe('latchkey simulate: arguments', () => {
  it.each([
    [['--bogus'], /unknown option/],
    [['--thermostats', 'ten'], /--thermostats must be an integer/],
    [['--ramp', '0'], /--ramp must be a number/],
    [['--token-ttl', '86401'], /--token-ttl must be an integer in 1\.\.86400/],
    [['--embedded', '--url', 'http://x'], /exclude each other/],
    [['--thermostats', '0', '--locks', '0'], /at least 1/],
    [['--tamper', '2'], /--tamper needs --signed/],
    [['--signed', '--tamper', '2', '--thermostats', '1', '--locks', '0'], /--tamper needs at least 2 devices/],
    [['--signed', '--gcp', '2'], /--signed needs --gcp 0/],
    [['extra'], /unexpected argument "extra"/],
    [['--json=yes'], /option --json takes no value/],
    [['--admin-token'], /option --admin-token needs a value/],
  ])('%j is a usage error (exit 2) naming the setting', async (argv, pattern) => {
    const t = await simulate(argv);
    expect(t.code).toBe(2);
    expect(t.err).toMatch(/^error: usage: /);
    expect(t.err).toMatch(pattern);
    expect(t.out).toBe('');
  });

  it('prints help', async () => {
    const t = await simulate(['--help']);
    expect(t.code).toBe(0);
    expect(t.out).toContain('Usage: latchkey simulate');
  });

  it('needs an admin token for an external stack', async () => {
    const t = await simulate([]);
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/^error: admin_token_missing: /);
  });

  it('reports an unreachable API as a coded error, never the admin token', async () => {
    const t = await simulate(['--url', 'http://127.0.0.1:1', '--mqtt-url', 'mqtt://127.0.0.1:1'], { env: { LATCHKEY_ADMIN_TOKEN: 'secret-admin-token-123' } });
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/^error: network_error: /);
    expect(t.err).not.toContain('secret-admin-token-123');
  });
});

describe('latchkey simulate --embedded', () => {
  it('--json prints exactly the report object of docs/simulator.md and exits 0 on a clean run (signed, with a tampering broker)', async () => {
    const t = await simulate(
      ['--embedded', '--json', '--thermostats', '3', '--locks', '3', '--duration', '2', '--token-ttl', '2', '--rogue', '3', '--telemetry-interval', '1', '--commands-per-s', '4', '--signed', '--tamper', '4'],
      { isTTY: true },
    );
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    const lines = t.out.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const report = JSON.parse(lines[0]!);
    const shape = (v: unknown): unknown =>
      typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)])) : typeof v;
    expect(shape(report)).toEqual({
      devices: { requested: 'number', provisioned: 'number', connected: 'number' },
      connect: { p50Ms: 'number', p95Ms: 'number', p99Ms: 'number' },
      telemetry: { sent: 'number', received: 'number', perSecond: 'number' },
      commands: { sent: 'number', ok: 'number', failed: 'number', p50Ms: 'number', p99Ms: 'number' },
      tokenRefreshes: 'number',
      reconnects: 'number',
      authFailures: 'number',
      rogue: { attempted: 'number', refused: 'number' },
      signed: { verified: 'number', tampered: 'number', detected: 'number' },
      durationS: 'number',
    });
    expect(report.devices).toEqual({ requested: 6, provisioned: 6, connected: 6 });
    expect(report.rogue).toEqual({ attempted: 3, refused: 3 });
    expect(report.signed).toEqual({ verified: report.telemetry.received, tampered: 4, detected: 4 });
  }, 60_000);

  it('on a terminal: a live progress line, then the summary table', async () => {
    const t = await simulate(['--embedded', '--thermostats', '2', '--locks', '2', '--duration', '2', '--enroll'], { isTTY: true });
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/\r\x1b\[2K(connect|steady|finish)/);
    expect(t.out).toMatch(/devices +4 connected \/ 4 provisioned \/ 4 requested/);
    expect(t.out).toMatch(/result +PASS/);
  }, 60_000);

  it('not on a terminal: no progress line, only the summary', async () => {
    const t = await simulate(['--embedded', '--thermostats', '1', '--locks', '1', '--duration', '1']);
    expect(t.code).toBe(0);
    expect(t.out).not.toContain('\r');
    expect(t.out).toMatch(/result +PASS/);
  }, 60_000);
});
