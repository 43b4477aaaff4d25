/**
 * The installed size of `@latchkey/device-sdk` with its dependency closure (jose, mqtt and mqtt's
 * dependencies), walked through node_modules from the SDK's package.json (bench/sdk-footprint.ts, 1).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface PackageSize {
  name: string;
  version: string;
  /** the installed directory (one package may be installed in two versions) */
  dir: string;
  bytes: number;
  files: number;
}

/** The directory of package `name` as Node would resolve it from `fromDir` (walking up node_modules). */
function findPackageDir(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

/** Bytes and files under `dir`, not descending into nested node_modules (those are packages of their own). */
function dirSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = dirSize(p);
      bytes += sub.bytes;
      files += sub.files;
    } else if (entry.isFile()) {
      bytes += statSync(p).size;
      files += 1;
    }
  }
  return { bytes, files };
}

/** The SDK and every package its `dependencies` pull in (transitively, optional ones when installed). */
export function sdkClosure(): PackageSize[] {
  const seen = new Map<string, PackageSize>();
  const visit = (name: string, dir: string) => {
    const real = path.resolve(dir);
    if (seen.has(real)) return;
    const manifest = JSON.parse(readFileSync(path.join(real, 'package.json'), 'utf8')) as {
      version?: string;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    seen.set(real, { name, version: manifest.version ?? '?', dir: real, ...dirSize(real) });
    for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      const depDir = findPackageDir(dep, real);
      if (depDir === null) {
        if (manifest.optionalDependencies?.[dep] !== undefined) continue;
        throw new Error(`${name} depends on ${dep}, which is not installed`);
      }
      visit(dep, depDir);
    }
  };
  visit('@latchkey/device-sdk', path.join(ROOT, 'device-sdk'));
  return [...seen.values()];
}
