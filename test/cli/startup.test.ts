/**
 * `latchkey --help` and `latchkey token` start fast because they load little (issue 9): the bin
 * runs compiled JavaScript with plain node, and each command's module is imported only when it
 * runs. This checks what they load — an invariant — not how long it takes (`npm run bench --
 * cli-startup` measures that).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDeviceKeyPair, saveKeyPair } from '@latchkey/device-sdk';
import { BIN, cleanEnv, tempDir } from './cli-process.ts';

/** An ESM resolve hook that reports every module URL the process resolves, one line each on stderr. */
const HOOKS = `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write('loaded ' + r.url + '\\n');
  return r;
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

/** Runs the bin and returns its stdout and the third-party packages and workspace files it loaded. */
function traced(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; packages: Set<string>; workspace: Set<string> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, BIN, ...args], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const urls = [...stderr.matchAll(/^loaded (\S+)$/gm)].map((m) => m[1]!);
      const packages = new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []));
      const workspace = new Set(urls.flatMap((u) => /\/(device-sdk|provisioning|broker|simulator|console|cli)\/(dist|src)\/(.+)$/.exec(u)?.slice(1, 4).join('/') ?? []));
      resolve({ code, stdout, packages, workspace });
    });
  });
}

const SERVER_PACKAGES = ['fastify', '@fastify/swagger', 'aedes', 'better-sqlite3', 'pino', 'prom-client', 'ws', 'mqtt', 'tsx', 'typescript'];

describe('what the latchkey bin loads', () => {
  const tmp = tempDir('startup');
  afterAll(() => tmp.cleanup());

  it('--help: compiled JavaScript only, no third-party package', async () => {
    const r = await traced(['--help'], tmp.dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: latchkey /);
    expect([...r.packages]).toEqual([]);
    expect(r.workspace.size).toBeGreaterThan(0);
    expect([...r.workspace].filter((f) => !f.startsWith('cli/dist/'))).toEqual([]); // no console, broker or provisioning
    expect([...r.workspace].filter((f) => f.startsWith('cli/dist/commands/'))).toEqual([]);
  });

  it('token: the SDK\'s light token entry (dist) and jose/base64url; no MQTT, HTTP server, database, logger or metrics', async () => {
    await saveKeyPair(`${tmp.dir}/d`, generateDeviceKeyPair());
    const r = await traced(['token', '--device', 'thermo-1', '--key', 'd/device.key.pem'], tmp.dir);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('.')).toHaveLength(3);
    expect([...r.packages]).toEqual(['jose']);
    for (const p of SERVER_PACKAGES) expect(r.packages.has(p), p).toBe(false);
    expect([...r.workspace].filter((f) => /\/src\//.test(f) || f.endsWith('.ts'))).toEqual([]); // nothing run from TypeScript sources
    expect([...r.workspace].filter((f) => f.startsWith('cli/dist/commands/'))).toEqual(['cli/dist/commands/token.js']);
    expect([...r.workspace]).toContain('device-sdk/dist/token-entry.js');
    expect([...r.workspace].filter((f) => /^(console|provisioning|broker|simulator)\//.test(f))).toEqual([]);
    // neither the MQTT client nor the verifier side of the protocol core
    expect([...r.workspace].filter((f) => /device-client|session|verify-token|public-key/.test(f))).toEqual([]);
  });

  it('without a build (npm install --ignore-scripts), the bin says how to build instead of a stack trace', async () => {
    mkdirSync(path.join(tmp.dir, 'unbuilt/bin'), { recursive: true });
    copyFileSync(BIN, path.join(tmp.dir, 'unbuilt/bin/latchkey.js'));
    const r = spawnSync(process.execPath, [path.join(tmp.dir, 'unbuilt/bin/latchkey.js'), '--help'], { encoding: 'utf8', env: cleanEnv() });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('error: not_built: latchkey is not compiled yet; run `npm install` (or `npm run build`) in the repository root\n');
  });

  it('the tracer sees server packages and the console when a command loads them (it can fail)', async () => {
    const r = await traced(['up', '--help'], tmp.dir);
    expect(r.code).toBe(0);
    expect(r.packages.has('fastify') || r.packages.has('aedes')).toBe(true);
    expect([...r.workspace]).toContain('console/dist/index.js'); // `up` loads it, compiled
  });
});
