import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readWycheproof, WYCHEPROOF_DIR } from './helpers/wycheproof.ts';

/**
 * A clone passes its own tests with nothing beside it (issue 9): no test, benchmark or test
 * configuration names a path outside the repository. `.ci/run` proves the whole of it by running
 * the suite in a fresh clone in a temporary directory; this test catches the mistake early.
 */
const root = fileURLToPath(new URL('..', import.meta.url));

/** Built from parts, so this file does not match itself. */
const OUTSIDE = [['..', 'shared'].join('/'), ['', 'work', ''].join('/')];

function filesUnder(rel: string): string[] {
  const abs = path.join(root, rel);
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).flatMap((name) => (name === 'node_modules' || name === 'results' ? [] : filesUnder(path.join(rel, name))));
}

/** `file:line: text` for every line of `text` that names a path outside the repository. */
export function outsideReferences(file: string, text: string): string[] {
  return text.split('\n').flatMap((line, i) => (OUTSIDE.some((needle) => line.includes(needle)) ? [`${file}:${i + 1}: ${line.trim()}`] : []));
}

const SCANNED = ['test', 'bench', 'vitest.config.ts', 'package.json', 'tsconfig.json', '.ci'];
const isText = (f: string) => /\.(ts|js|mjs|json|sh|md)$/.test(f) || f.startsWith('.ci/');

describe('the repository needs nothing beside it', () => {
  it('no test, benchmark or test configuration names the shared folder beside the repository or an absolute workspace path', () => {
    const files = SCANNED.flatMap(filesUnder).filter((f) => isText(f) && !f.startsWith(path.join('test', 'fixtures', 'wycheproof')));
    expect(files.length).toBeGreaterThan(50);
    expect(files.flatMap((f) => outsideReferences(f, readFileSync(path.join(root, f), 'utf8')))).toEqual([]);
  });

  it('the checker sees such a reference (it can fail)', () => {
    const probe = `const dir = path.resolve(repoRoot, '${OUTSIDE[0]}/vectors');`;
    expect(outsideReferences('probe.ts', `ok\n${probe}`)).toEqual([`probe.ts:2: ${probe}`]);
    expect(outsideReferences('probe.ts', `x = '${OUTSIDE[1]}main/y'`)).toHaveLength(1);
  });

  it('the Wycheproof vectors are vendored with their LICENSE and a NOTICE naming source and commit, each file it lists present', () => {
    const dir = fileURLToPath(WYCHEPROOF_DIR);
    expect(dir.startsWith(root)).toBe(true);
    const notice = readFileSync(path.join(dir, 'NOTICE'), 'utf8');
    expect(notice).toMatch(/C2SP\/wycheproof/);
    expect(notice).toMatch(/commit [0-9a-f]{7,40}\b/);
    expect(readFileSync(path.join(dir, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
    const listed = [...notice.matchAll(/^\s+([a-z0-9_]+\.json)\b/gm)].map((m) => m[1]!);
    const present = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(listed.sort()).toEqual(present.sort());
    for (const file of present) {
      expect(existsSync(path.join(dir, file))).toBe(true);
      expect(readWycheproof<{ testGroups: unknown[] }>(file).testGroups.length, file).toBeGreaterThan(0);
    }
  });
});
