/**
 * Test helpers: run the real `latchkey` bin (node cli/bin/latchkey.js) as a child process, and
 * start `latchkey up` on port 0 reading the addresses it prints (docs/configuration.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(REPO_ROOT, 'cli/bin/latchkey.js');

/** The parent's environment without any LATCHKEY_* setting, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LATCHKEY_')) env[k] = v;
  return { ...env, ...extra };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `latchkey <args>` to completion. */
export function runLatchkey(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO_ROOT, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The `error: <code>: <detail>` line of a failed run, split; null when there is none. */
export function errorLine(stderr: string): { code: string; detail: string } | null {
  const lines = stderr.split('\n').filter((l) => l.startsWith('error: '));
  if (lines.length !== 1) return null;
  const m = /^error: ([a-z_]+): (.*)$/.exec(lines[0]!);
  return m === null ? null : { code: m[1]!, detail: m[2]! };
}

export interface RunningStack {
  child: ChildProcess;
  httpUrl: string;
  /** '' for `--role api`, which serves no MQTT */
  mqttUrl: string;
  /** every `name: value` line printed on stdout */
  lines: Map<string, string>;
  stderr: () => string;
  /** resolves with the exit code and signal */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for the exit */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `latchkey up --http-port 0 --mqtt-port 0 …` and resolves once it printed its
 * `http:` and `mqtt:` lines and the `admin token:` line (the last it prints; `--role api` prints no `mqtt:`).
 */
export function startUp(
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; /** called at once with the child (e.g. to kill it however the test ends) */ onSpawn?: (child: ChildProcess) => void },
): Promise<RunningStack> {
  const child = spawn(process.execPath, [BIN, 'up', '--http-port', '0', '--mqtt-port', '0', ...args], {
    cwd: opts.cwd,
    env: cleanEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  opts.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  const lines = new Map<string, string>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      for (const line of stdout.split('\n').slice(0, -1)) {
        const m = /^([a-z ]+): (.+)$/.exec(line);
        if (m !== null) lines.set(m[1]!, m[2]!);
      }
      if (lines.has('http') && lines.has('admin token')) {
        resolve({
          child,
          httpUrl: lines.get('http')!,
          mqttUrl: lines.get('mqtt') ?? '',
          lines,
          stderr: () => stderr,
          exited,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then(({ code }) => reject(new Error(`latchkey up exited (${code}) before printing its addresses: ${stderr.slice(-2000)}`)));
  });
}

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `latchkey-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
