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
    const broker = any(protocolOnly, pkg('aedes'), pkg('aedes-persistence'), pkg('ws'), pkg('pino'), pkg('prom-client'), pkg('mqtt-packet'), pkg('ioredis'), pkg('aedes-persistence-redis'), pkg('mqemitter-redis'));
    const provisioning = any(protocolOnly, pkg('fastify'), pkg('@fastify/swagger'), pkg('better-sqlite3'), pkg('pg'), pkg('pino'), pkg('prom-client'));
    expect(violations('broker/src', broker, 'broker/src')).toEqual([]);
    expect(violations('provisioning/src', provisioning, 'provisioning/src')).toEqual([]);
  });

  it('only the registry speaks SQL: the database drivers are imported in provisioning/src/registry alone', () => {
    const drivers = any(pkg('better-sqlite3'), pkg('pg'));
    const outside = SOURCE_DIRS.flatMap(sourceFiles).filter((f) => !f.startsWith(`provisioning${path.sep}src${path.sep}registry${path.sep}`));
    expect(outside.flatMap((f) => importsOf(f).filter(drivers).map((spec) => `${f}: ${spec}`))).toEqual([]);
    // and inside it, each driver only in its runner and migrations (and PostgreSQL's feed listener)
    const registry = sourceFiles('provisioning/src/registry');
    const users = (driver: string) => registry.filter((f) => importsOf(f).some(pkg(driver))).map((f) => path.basename(f)).sort();
    expect(users('better-sqlite3')).toEqual(['migrations.ts', 'sqlite-runner.ts']);
    expect(users('pg')).toEqual(['migrations-postgres.ts', 'postgres-feed.ts', 'postgres-runner.ts']);
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

  it('the simulator imports only the SDK public entry; its Cloud IoT Core devices (simulator/src/gcp) also mqtt, as foreign firmware', () => {
    expect(violations('simulator/src', (s) => s === '@latchkey/device-sdk', 'simulator/src').filter((v) => !v.startsWith(`simulator/src/gcp${path.sep}`))).toEqual([]);
    expect(violations('simulator/src/gcp', (s) => s === '@latchkey/device-sdk' || pkg('mqtt')(s), 'simulator/src')).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(root, 'simulator/package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual(['@latchkey/device-sdk', 'mqtt']);
  });

  it('the rule checker sees imports (it can fail)', () => {
    const probe = 'device-sdk/src/protocol/verify-token.ts';
    expect(importsOf(probe)).toContain('node:crypto');
    expect(violations('device-sdk/src/protocol', () => false, 'device-sdk/src/protocol')).toEqual([]);
    expect(violations('broker/src', () => false, 'broker/src').length).toBeGreaterThan(0);
    expect(violations('console/src', (s) => s !== '@latchkey/provisioning', 'console/src').length).toBeGreaterThan(0);
  });
});

/** Source text without comments (a `//` right after `:` is a URL, not a comment). */
function codeOf(file: string): string {
  return readFileSync(path.join(root, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:\\])\/\/.*$/gm, '$1');
}

const SOURCE_DIRS = ['device-sdk/src', 'broker/src', 'provisioning/src', 'console/src', 'cli/src', 'simulator/src'];
const CORE = `device-sdk/src/protocol${path.sep}`;

/** Files outside the protocol core whose code matches `pattern`, with the matching text. */
function restatements(pattern: RegExp): string[] {
  return SOURCE_DIRS.flatMap(sourceFiles)
    .filter((file) => !`${file}${path.sep}`.startsWith(CORE) && !file.startsWith(CORE))
    .flatMap((file) => [...codeOf(file).matchAll(pattern)].map((m) => `${file}: ${m[0]}`));
}

describe('one owner for the principal and topic forms (docs/architecture.md)', () => {
  const SVC_LITERAL = /['"`]svc:/g;
  const DEVICE_TOPIC_TEMPLATE = /`devices\/\$\{/g;

  it("no 'svc:' literal outside the protocol core (servicePrincipal, serviceClientId, parsePrincipal, parseClientId)", () => {
    expect(restatements(SVC_LITERAL)).toEqual([]);
  });

  it('no `devices/${` template outside the protocol core (deviceTopics)', () => {
    expect(restatements(DEVICE_TOPIC_TEMPLATE)).toEqual([]);
  });

  it('the checks see what they look for (they can fail)', () => {
    expect(codeOf('device-sdk/src/protocol/ids.ts')).toMatch(SVC_LITERAL);
    expect(codeOf('device-sdk/src/protocol/topics.ts')).toMatch(DEVICE_TOPIC_TEMPLATE);
    expect(codeOf('device-sdk/src/protocol/ids.ts')).not.toContain('protocol.md');
    expect(codeOf('cli/src/admin-client.ts')).toContain("'http://127.0.0.1:8080'");
  });
});

describe('one error base (docs/architecture.md §Conventions)', () => {
  it("every layer's error class is a CodedError with its own name and code", async () => {
    const { CodedError, ProtocolError } = await import('@latchkey/device-sdk/protocol');
    const { DeviceClientError, DeviceKeyError } = await import('@latchkey/device-sdk');
    const { RegistryError } = await import('../provisioning/src/registry/index.ts');
    const { ApiError } = await import('../provisioning/src/http/api-error.ts');
    const { CliError } = await import('../cli/src/cli-error.ts');
    const { ConsoleError } = await import('../console/src/pages/error.ts');
    const errors = [
      new ProtocolError('token_malformed', 'm'),
      new DeviceClientError('closed', 'm'),
      new DeviceKeyError('key_exists', 'm'),
      new RegistryError('device_exists', 'm'),
      new ApiError('device_exists', 'm'),
      new CliError('usage', 'm'),
      new ConsoleError('csrf_token_invalid', 't', 'm'),
    ];
    for (const e of errors) {
      expect(e).toBeInstanceOf(CodedError);
      expect(e.name).toBe(e.constructor.name);
      expect(e.code.length).toBeGreaterThan(0);
    }
  });
});
