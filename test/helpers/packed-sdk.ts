/**
 * `@latchkey/device-sdk` as a user gets it: `npm pack -w device-sdk` (its prepack script compiles
 * it first), then `npm install <tarball>` into a fresh `"type": "module"` project in a temporary
 * directory, outside the repository. Used by test/packaging/device-sdk.test.ts and by the
 * sdk-footprint benchmark. Installs reuse the npm cache (`--prefer-offline`): the SDK's
 * dependencies are the repository's own, so no download is needed when the cache is warm.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The parent's environment without npm's `npm_*` script variables, which would reconfigure a nested npm. */
export function cleanNpmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return env;
}

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, env: cleanNpmEnv(), maxBuffer: 16 * 2 ** 20 });
  return stdout;
}

export interface PackedSdk {
  /** the temporary directory holding the tarball and the project */
  root: string;
  tarball: string;
  /** every path in the tarball, relative to the package root */
  files: string[];
  /** the consumer project (package.json, node_modules) */
  project: string;
  cleanup(): void;
}

/**
 * A new `"type": "module"` project in `dir` with `specs` installed (tarballs or exact registry
 * versions), from the npm cache when it has them.
 *
 * @example
 * ```ts
 * await installProject(path.join(root, 'recipe'), ['mqtt@5.16.0', 'jsonwebtoken@9.0.3']);
 * ```
 */
export async function installProject(dir: string, specs: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: path.basename(dir), private: true, type: 'module' }, null, 2)}\n`);
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--save-exact', ...specs], dir);
}

/**
 * Packs the SDK and installs the tarball (and `extra` registry packages, exact versions) into a
 * new project.
 *
 * @example
 * ```ts
 * const sdk = await packAndInstallSdk(['@types/node@20.19.43']);
 * try { ... node main.js in sdk.project ... } finally { sdk.cleanup(); }
 * ```
 */
export async function packAndInstallSdk(extra: string[] = []): Promise<PackedSdk> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'latchkey-packed-sdk-'));
  try {
    const packed = JSON.parse(await npm(['pack', '-w', 'device-sdk', '--pack-destination', root, '--json'], REPO_ROOT)) as {
      filename: string;
      files: { path: string }[];
    }[];
    const tarball = path.join(root, packed[0]!.filename);
    const project = path.join(root, 'device-app');
    await installProject(project, [tarball, ...extra]);
    return { root, tarball, files: packed[0]!.files.map((f) => f.path), project, cleanup: () => rmSync(root, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
}
