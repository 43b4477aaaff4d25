/**
 * Benchmark: how fast the `latchkey` command starts (issue 9). Wall time from spawn to exit of
 * `latchkey --help` and `latchkey token --device … --key …` (what a shell-scripted device runs once
 * per connect), beside a bare `node -e 0` in the same run: rounds alternate the three commands, one
 * warm-up round is discarded, then the median of RUNS rounds. Target: ≤ 0.25 s and ≤ 3× `node -e 0`.
 * The bin runs the compiled dist/ with plain node; this benchmark builds it first (a no-op when
 * it is up to date).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDeviceKeyPair, saveKeyPair } from '@latchkey/device-sdk';
import type { BenchResult } from './types.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'cli/bin/latchkey.js');
const RUNS = 10;
const TARGET_S = 0.25;
const TARGET_RATIO = 3;

/** Runs `node <args>` to its exit; resolves with the wall time in ms and stdout. */
function timed(args: string[], cwd: string): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '' } });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      if (code !== 0) reject(new Error(`node ${args.join(' ')} exited ${code}`));
      else resolve({ ms, stdout });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Runs the benchmark.
 *
 * @example
 * ```ts
 * const r = await benchCliStartup(); console.log(r.lines.join('\n'));
 * ```
 */
export async function benchCliStartup(): Promise<BenchResult> {
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', path.join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-startup-'));
  try {
    await saveKeyPair(path.join(dir, 'thermo-1'), generateDeviceKeyPair());
    const commands = {
      node: ['-e', '0'],
      help: [BIN, '--help'],
      token: [BIN, 'token', '--device', 'thermo-1', '--key', 'thermo-1/device.key.pem'],
    } as const;
    const times: Record<keyof typeof commands, number[]> = { node: [], help: [], token: [] };
    const names = Object.keys(commands) as (keyof typeof commands)[];
    for (let round = -1; round < RUNS; round++) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const { ms, stdout } = await timed([...commands[name]], dir);
        if (name === 'token' && stdout.trim().split('.').length !== 3) throw new Error('latchkey token did not print a token');
        if (name === 'help' && !stdout.startsWith('Usage: latchkey')) throw new Error('latchkey --help did not print its usage');
        if (round >= 0) times[name].push(ms);
      }
    }
    const node = median(times.node);
    const help = median(times.help);
    const token = median(times.token);
    const verdict = (ms: number) => (ms / 1000 <= TARGET_S && ms / node <= TARGET_RATIO ? 'OK' : 'NOT MET');
    const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))} ms`;
    return {
      name: 'cli-startup',
      lines: [
        `median wall time of ${RUNS} alternated runs (spawn to exit; range in brackets):`,
        `  node -e 0:         ${node.toFixed(0)} ms (${range(times.node)})`,
        `  latchkey --help:   ${help.toFixed(0)} ms (${range(times.help)}), ${(help / node).toFixed(2)}× node -e 0 — ${verdict(help)}`,
        `  latchkey token:    ${token.toFixed(0)} ms (${range(times.token)}), ${(token / node).toFixed(2)}× node -e 0 — ${verdict(token)}`,
        `target: ≤ ${TARGET_S * 1000} ms and ≤ ${TARGET_RATIO}× node -e 0`,
      ],
      metrics: { nodeMs: node, helpMs: help, tokenMs: token, helpRatio: help / node, tokenRatio: token / node },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
