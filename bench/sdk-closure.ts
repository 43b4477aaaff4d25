/**
 * Installed sizes of a package with its dependency closure (bench/sdk-footprint.ts, 1): walked
 * through node_modules from the package as Node would resolve it, each installed copy once.
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

/**
 * Package `name` as installed for `fromDir`, and every package its `dependencies` pull in
 * (transitively, optional ones when installed), each installed copy once.
 */
export function packageClosure(name: string, fromDir: string): PackageSize[] {
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
  const dir = findPackageDir(name, fromDir);
  if (dir === null) throw new Error(`${name} is not installed for ${fromDir}`);
  visit(name, dir);
  return [...seen.values()];
}

/** The workspace SDK's closure in this repository's node_modules. */
export function sdkClosure(): PackageSize[] {
  return packageClosure('@latchkey/device-sdk', path.join(ROOT, 'device-sdk'));
}

/** Several packages' closures together, each installed copy once. */
export function closureOf(names: string[], fromDir: string): PackageSize[] {
  const all = new Map<string, PackageSize>();
  for (const n of names) for (const p of packageClosure(n, fromDir)) all.set(p.dir, p);
  return [...all.values()];
}

export interface Installed {
  packages: number;
  files: number;
  bytes: number;
  /** bytes of @types/* packages: installed as runtime dependencies of mqtt, never loaded */
  typesOnly: number;
  own: number;
  largest: PackageSize[];
}

export function summarize(closure: PackageSize[]): Installed {
  return {
    packages: closure.length,
    files: closure.reduce((a, p) => a + p.files, 0),
    bytes: closure.reduce((a, p) => a + p.bytes, 0),
    typesOnly: closure.filter((p) => p.name.startsWith('@types/')).reduce((a, p) => a + p.bytes, 0),
    own: closure[0]!.bytes,
    largest: [...closure].sort((a, b) => b.bytes - a.bytes).slice(0, 4),
  };
}
