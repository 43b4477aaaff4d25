/**
 * docs/quickstart.md, executed (issue 5: the README quick start cannot rot). Every ```sh block
 * tagged `<!-- quickstart:ROLE -->` runs in bash, in order, in a temp directory, with only these
 * substitutions: `npx latchkey` → `node cli/bin/latchkey.js` (the same bin; npx itself is checked
 * from the repo root below), the default ports → the ports `up` bound, and `npm install` +
 * `npm start` → `latchkey up --http-port 0 --mqtt-port 0` (what `npm start` runs, on free ports),
 * with LATCHKEY_URL set to the bound HTTP address for the admin commands' default URL.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, REPO_ROOT, runLatchkey, startUp, tempDir, type RunningStack } from './cli-process.ts';
import { requireTools } from '../helpers/tools.ts';

const DOC = path.join(REPO_ROOT, 'docs/quickstart.md');

/** The tagged shell blocks of the document, in order. */
export function quickstartBlocks(markdown: string): { role: string; script: string }[] {
  const blocks: { role: string; script: string }[] = [];
  for (const m of markdown.matchAll(/<!-- quickstart:([a-z-]+) -->\s*\n```sh\n([\s\S]*?)\n```/g)) blocks.push({ role: m[1]!, script: m[2]! });
  return blocks;
}

const tools = requireTools(['mosquitto_pub', 'mosquitto_sub', 'curl', 'bash'], 'apt-get install mosquitto-clients curl');

const MARKER = '__quickstart_device_waiting__';



interface BashRun {
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** resolves once MARKER appears on stdout, or the script ended */
  marker: Promise<void>;
  readonly finished: boolean;
  /** stdout so far */
  readonly stdout: string;
}

/** Every script still running when a test ends (a failed or timed-out step) is killed with its children. */
const running = new Set<number>();
afterAll(() => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Runs a script in bash (errexit, pipefail), in its own process group. */
function bash(script: string, cwd: string, env: Record<string, string>): BashRun {
  const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid !== undefined) running.add(child.pid);
  let stdout = '';
  let stderr = '';
  let finished = false;
  let markerSeen: () => void = () => {};
  const marker = new Promise<void>((r) => (markerSeen = r));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (stdout.includes(MARKER)) markerSeen();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      if (child.pid !== undefined) running.delete(child.pid);
      finished = true;
      markerSeen();
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    marker,
    get finished() {
      return finished;
    },
    get stdout() {
      return stdout;
    },
  };
}

describe.skipIf(tools.skip)(`docs/quickstart.md, executed${tools.note}`, () => {
  const tmp = tempDir('quickstart');
  let stack: RunningStack | null = null;
  afterAll(async () => {
    await stack?.stop();
    tmp.cleanup();
  });

  it('goes from npm start to a device connected with mosquitto_pub and a command round trip', async () => {
    tools.assertPresent();
    const blocks = quickstartBlocks(readFileSync(DOC, 'utf8'));
    expect(blocks.map((b) => b.role)).toEqual(['server', 'device', 'device', 'device-wait', 'backend']);

    // Terminal 1: `npm install` + `npm start`, and npm start is `latchkey up`.
    expect(blocks[0]!.script.split('\n')).toEqual(['npm install', 'npm start']);
    expect(JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).scripts.start).toBe('latchkey up');
    stack = await startUp([], { cwd: tmp.dir });
    expect(stack.lines.get('admin token')).toBe('data/admin-token');
    const mqttPort = new URL(stack.mqttUrl).port;
    // the admin commands' default URL (http://127.0.0.1:8080), pointed at the bound port
    const apiEnv = { LATCHKEY_URL: stack.httpUrl };
    const substitute = (script: string) =>
      script
        .replaceAll('npx latchkey', `node ${JSON.stringify(BIN)}`)
        .replaceAll('http://127.0.0.1:8080', stack!.httpUrl)
        .replaceAll('-p 1883', `-p ${mqttPort}`);
    for (const b of blocks.slice(1)) expect(substitute(b.script)).not.toMatch(/:8080\b|-p 1883\b/);

    // Terminal 2: keys, registration, a connect with mosquitto_pub; then wait for one command.
    const device = [blocks[1]!, blocks[2]!].map((b) => substitute(b.script)).join('\n');
    const wait = substitute(blocks[3]!.script);
    const deviceRun = bash(`${device}\necho ${MARKER}\n${wait}`, tmp.dir, apiEnv);
    await deviceRun.marker;
    if (deviceRun.finished) {
      const r = await deviceRun.done;
      expect.fail(`the device steps failed (exit ${r.code}): ${r.stderr}`);
    }

    // Terminal 3 acts once mosquitto_sub is connected and subscribed. A person reads terminal 2
    // first; the test repeats the step while the API answers device_offline (not connected yet)
    // or, should the command have raced the SUBSCRIBE, command_timeout.
    let answer: { ok?: boolean; result?: unknown; code?: string } = {};
    for (let attempt = 0; attempt < 200 && !deviceRun.finished; attempt++) {
      const backend = await bash(substitute(blocks[4]!.script), tmp.dir, apiEnv).done;
      expect(backend.code, backend.stderr).toBe(0);
      answer = JSON.parse(backend.stdout);
      if (answer.code !== 'device_offline' && answer.code !== 'command_timeout') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(answer).toMatchObject({ ok: true, result: { rebooted: true } });

    const deviceDone = await deviceRun.done;
    expect(deviceDone.code, deviceDone.stderr).toBe(0);
    const received = JSON.parse(deviceDone.stdout.slice(deviceDone.stdout.indexOf(MARKER) + MARKER.length).trim().split('\n')[0]!);
    expect(received).toMatchObject({ params: { delayS: 1 } });
    expect(typeof received.id).toBe('string');
  }, 60_000);
});

describe.skipIf(tools.skip)(`the README's quick start, executed${tools.note}`, () => {
  const tmp = tempDir('readme-quickstart');
  let stack: RunningStack | null = null;
  afterAll(async () => {
    await stack?.stop();
    tmp.cleanup();
  });

  it('registers a device, connects it with mosquitto_pub and blocks it', async () => {
    tools.assertPresent();
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const blocks = quickstartBlocks(readme).filter((b) => b.role === 'readme');
    expect(blocks).toHaveLength(1);
    stack = await startUp([], { cwd: tmp.dir });
    const mqttPort = new URL(stack.mqttUrl).port;
    const script = blocks[0]!.script.replaceAll('npx latchkey', `node ${JSON.stringify(BIN)}`).replaceAll('-p 1883', `-p ${mqttPort}`);
    expect(script).not.toMatch(/-p 1883\b/);
    const run = await bash(script, tmp.dir, { LATCHKEY_URL: stack.httpUrl }).done;
    expect(run.code, run.stderr).toBe(0);
    const shown = await runLatchkey(['devices', 'show', 'thermo-1', '--url', stack.httpUrl], { cwd: tmp.dir });
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: 'thermo-1', blocked: true });
    // and the blocked device is refused (CONNACK 5, "not authorised")
    const again = await bash(script.split('\n').filter((l) => /^(TOKEN=|mosquitto_pub)/.test(l)).join('\n'), tmp.dir, {}).done;
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/not authori[sz]ed/i);
  }, 60_000);
});

describe('npx latchkey from the repository root', () => {
  it('runs the linked bin', async () => {
    const r = spawnSync('npx', ['--no-install', 'latchkey', '--help'], { cwd: REPO_ROOT, env: cleanEnv(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: latchkey /);
  });
});
