import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulateCommand, type SimulateDeps } from '../../cli/src/simulate/simulate-command.ts';
import { startTestStack } from '../simulator/helpers/stack.ts';

const cwd = mkdtempSync(path.join(tmpdir(), 'latchkey-sim-cli-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function io(overrides: Partial<SimulateDeps> = {}, isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  const deps: SimulateDeps = {
    stdout: { write: (t: string) => out.push(t), isTTY },
    stderr: { write: (t: string) => err.push(t) },
    env: {},
    cwd,
    startStack: () => startTestStack(),
    ...overrides,
  };
  return { deps, out: () => out.join(''), err: () => err.join('') };
}

describe('latchkey simulate: arguments', () => {
  it.each([
    [['--bogus'], /unknown option/],
    [['--thermostats', 'ten'], /--thermostats must be an integer/],
    [['--ramp', '0'], /--ramp must be a number/],
    [['--token-ttl', '86401'], /--token-ttl must be an integer in 1\.\.86400/],
    [['--embedded', '--url', 'http://x'], /exclude each other/],
    [['--thermostats', '0', '--locks', '0'], /at least 1/],
    [['extra'], /positional/],
    [['--json=yes'], /option --json takes no value/],
    [['--admin-token'], /option --admin-token needs a value/],
  ])('%j is a usage error (exit 2) naming the setting', async (argv, pattern) => {
    const t = io();
    expect(await simulateCommand(argv, t.deps)).toBe(2);
    expect(t.err()).toMatch(/^error: usage: /);
    expect(t.err()).toMatch(pattern);
    expect(t.out()).toBe('');
  });

  it('prints help', async () => {
    const t = io();
    expect(await simulateCommand(['--help'], t.deps)).toBe(0);
    expect(t.out()).toContain('Usage: latchkey simulate');
  });

  it('needs an admin token for an external stack, and a stack factory for --embedded', async () => {
    const t = io();
    expect(await simulateCommand([], t.deps)).toBe(1);
    expect(t.err()).toMatch(/^error: admin_token_missing: /);
    const u = io({ startStack: undefined });
    expect(await simulateCommand(['--embedded'], u.deps)).toBe(1);
    expect(u.err()).toMatch(/^error: embedded_unavailable: /);
  });

  it('reports an unreachable API as a coded error, never the admin token', async () => {
    const t = io({ env: { LATCHKEY_ADMIN_TOKEN: 'secret-admin-token-123' } });
    expect(await simulateCommand(['--url', 'http://127.0.0.1:1', '--mqtt-url', 'mqtt://127.0.0.1:1'], t.deps)).toBe(1);
    expect(t.err()).toMatch(/^error: network_error: /);
    expect(t.err()).not.toContain('secret-admin-token-123');
  });
});

describe('latchkey simulate --embedded', () => {
  it('--json prints exactly the report object of cli.md and exits 0 on a clean run', async () => {
    const t = io({}, true);
    const code = await simulateCommand(
      ['--embedded', '--json', '--thermostats', '3', '--locks', '3', '--duration', '2', '--token-ttl', '2', '--rogue', '3', '--telemetry-interval', '1', '--commands-per-s', '4'],
      t.deps,
    );
    expect(t.err()).toBe('');
    expect(code).toBe(0);
    const lines = t.out().split('\n');
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
      durationS: 'number',
    });
    expect(report.devices).toEqual({ requested: 6, provisioned: 6, connected: 6 });
    expect(report.rogue).toEqual({ attempted: 3, refused: 3 });
  }, 60_000);

  it('on a terminal: a live progress line, then the summary table', async () => {
    const t = io({}, true);
    const code = await simulateCommand(['--embedded', '--thermostats', '2', '--locks', '2', '--duration', '2', '--enroll'], t.deps);
    expect(code).toBe(0);
    expect(t.out()).toMatch(/\r\x1b\[2K(connect|steady|finish)/);
    expect(t.out()).toMatch(/devices +4 connected \/ 4 provisioned \/ 4 requested/);
    expect(t.out()).toMatch(/result +PASS/);
  }, 60_000);

  it('not on a terminal: no progress line, only the summary', async () => {
    const t = io({}, false);
    expect(await simulateCommand(['--embedded', '--thermostats', '1', '--locks', '1', '--duration', '1'], t.deps)).toBe(0);
    expect(t.out()).not.toContain('\r');
    expect(t.out()).toMatch(/result +PASS/);
  }, 60_000);
});
