import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** docs/architecture.md §Import rules, enforced. */
const root = fileURLToPath(new URL('..', import.meta.url));

function sourceFiles(dir: string): string[] {
  const abs = path.join(root, dir);
  return readdirSync(abs).flatMap((name) => {
    const p = path.join(abs, name);
    if (statSync(p).isDirectory()) return sourceFiles(path.join(dir, name));
    return name.endsWith('.ts') ? [path.join(dir, name)] : [];
  });
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const specs = new Set<string>();
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]/g)) specs.add(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) specs.add(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.add(m[1]!);
  return [...specs];
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name/sub` kept for subpath rules). */
function bare(spec: string): string | null {
  if (spec.startsWith('.') || spec.startsWith('/')) return null;
  return spec;
}

function violations(dir: string, allowed: (spec: string) => boolean, ownRoot: string): string[] {
  const out: string[] = [];
  for (const file of sourceFiles(dir)) {
    for (const spec of importsOf(file)) {
      const b = bare(spec);
      if (b === null) {
        const target = path.normalize(path.join(path.dirname(file), spec));
        if (!target.startsWith(ownRoot)) out.push(`${file}: relative import leaves ${ownRoot}: ${spec}`);
      } else if (!b.startsWith('node:') && !allowed(b)) {
        out.push(`${file}: ${spec}`);
      }
    }
  }
  return out;
}

const pkg = (name: string) => (s: string) => s === name || s.startsWith(`${name}/`);
const any = (...preds: ((s: string) => boolean)[]) => (s: string) => preds.some((p) => p(s));

describe('import rules (docs/architecture.md)', () => {
  it('the protocol core imports only jose and node built-ins', () => {
    expect(violations('device-sdk/src/protocol', pkg('jose'), 'device-sdk/src/protocol')).toEqual([]);
  });

  it('the SDK imports only its core, jose and mqtt; its runtime dependencies are exactly jose and mqtt', () => {
    expect(violations('device-sdk/src', any(pkg('jose'), pkg('mqtt')), 'device-sdk/src')).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(root, 'device-sdk/package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual(['jose', 'mqtt']);
  });

  it('broker and provisioning reach the SDK only through its protocol subpath, and never each other', () => {
    const protocolOnly = (s: string) => s === '@latchkey/device-sdk/protocol';
    const broker = any(protocolOnly, pkg('aedes'), pkg('ws'), pkg('pino'), pkg('prom-client'), pkg('mqtt-packet'));
    const provisioning = any(protocolOnly, pkg('fastify'), pkg('@fastify/swagger'), pkg('better-sqlite3'), pkg('pino'), pkg('prom-client'));
    expect(violations('broker/src', broker, 'broker/src')).toEqual([]);
    expect(violations('provisioning/src', provisioning, 'provisioning/src')).toEqual([]);
  });

  it('the console never imports the broker: it sees it through ConsoleBrokerPort', () => {
    const console = any(
      (s) => s === '@latchkey/device-sdk/protocol',
      (s) => s === '@latchkey/provisioning' || s === '@latchkey/provisioning/registry',
      pkg('fastify'),
    );
    expect(violations('console/src', console, 'console/src')).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(root, 'console/package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('@latchkey/broker');
  });

  it('the simulator imports only the SDK public entry', () => {
    expect(violations('simulator/src', (s) => s === '@latchkey/device-sdk', 'simulator/src')).toEqual([]);
  });

  it('the rule checker sees imports (it can fail)', () => {
    const probe = 'device-sdk/src/protocol/verify-token.ts';
    expect(importsOf(probe)).toContain('node:crypto');
    expect(violations('device-sdk/src/protocol', () => false, 'device-sdk/src/protocol')).toEqual([]);
    expect(violations('broker/src', () => false, 'broker/src').length).toBeGreaterThan(0);
    expect(violations('console/src', (s) => s !== '@latchkey/provisioning', 'console/src').length).toBeGreaterThan(0);
  });
});
