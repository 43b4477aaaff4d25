/**
 * Comments cite what exists: a `.md` file a source, test or benchmark names is a file of this
 * repository (docs/, README.md), and a `§Heading` after it is a heading of that document — or,
 * with no document named, of some document in docs/. Numbered sections of outside standards
 * (`RFC 7518 §3.4`, `X.690 §10.1`, `SEC 1 §3.2.2.1`) are not headings and are not checked.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const DOCS = path.join(root, 'docs');

/** `Devices (admin)` → `Devices`, `` `latchkey up` `` → `latchkey up`: how a comment may name a heading. */
const normalize = (heading: string) => heading.replace(/`/g, '').replace(/\s*\([^)]*\)\s*$/, '').trim();

function headingsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => normalize(m[1]!));
}

const docHeadings = new Map(readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => [f, headingsOf(path.join(DOCS, f))]));
docHeadings.set('README.md', headingsOf(path.join(root, 'README.md')));
const allHeadings = [...docHeadings.values()].flat();

function filesUnder(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.includes('node_modules'))
    .map((f) => path.join(dir, f));
}
const SOURCES = ['device-sdk/src', 'broker/src', 'provisioning/src', 'console/src', 'cli/src', 'simulator/src', 'test', 'bench']
  .flatMap(filesUnder)
  .filter((f) => f !== path.join('test', 'doc-references.test.ts')); // its examples are dead on purpose

/** A `.md` reference resolves to a document of the repo: `docs/x.md`, `x.md` (meaning docs/x.md) or README.md. */
function documentOf(ref: string): string | null {
  const base = path.basename(ref);
  if (ref === 'README.md' || ref.endsWith('/README.md')) return 'README.md';
  return docHeadings.has(base) && (ref === base || ref.endsWith(`docs/${base}`)) ? base : null;
}

/** Does `cited` (the text after `§`) start with one of `headings`, as a whole heading? */
function citesHeading(cited: string, headings: readonly string[]): boolean {
  const text = cited.replace(/`/g, '');
  return headings.some((h) => text.startsWith(h) && !/[\p{L}\p{N}]/u.test(text.charAt(h.length)));
}

interface Problem {
  at: string;
  text: string;
}

/** Every reference in `text` that names something no document has. */
export function deadReferences(file: string, text: string): Problem[] {
  const problems: Problem[] = [];
  text.split('\n').forEach((line, i) => {
    const at = `${file}:${i + 1}`;
    let doc: string | null | undefined; // the document named last on this line (undefined: none yet)
    for (const m of line.matchAll(/([\w./-]*\.md)\b|§\s?([^\s§].*)$/g)) {
      if (m[1] !== undefined) {
        doc = documentOf(m[1]);
        if (doc === null) problems.push({ at, text: `no such document: ${m[1]}` });
        continue;
      }
      const cited = m[2]!.split('§')[0]!;
      if (/^(\d|[A-Z]\.\d)/.test(cited)) continue; // a numbered section of a standard
      const headings = doc === undefined || doc === null ? allHeadings : docHeadings.get(doc)!;
      if (!citesHeading(cited, headings)) problems.push({ at, text: `no heading "${cited.slice(0, 40)}"${doc ? ` in ${doc}` : ' in docs/'}` });
    }
  });
  return problems;
}

describe('comments cite what exists', () => {
  it('every cited document is in the repository, every cited § heading is one of its headings', () => {
    const problems = SOURCES.flatMap((file) => deadReferences(file, readFileSync(path.join(root, file), 'utf8')));
    expect(problems.map((p) => `${p.at} ${p.text}`)).toEqual([]);
  });

  it('the check finds what it looks for (it can fail)', () => {
    expect(existsSync(path.join(DOCS, 'protocol.md'))).toBe(true);
    expect(deadReferences('x.ts', '// protocol.md §Limits: at most 1000, RFC 7518 §3.4')).toEqual([]);
    expect(deadReferences('x.ts', '// protocol.md §Identifiers, §Keys')).toHaveLength(1);
    expect(deadReferences('x.ts', '// design.md style #6')).toHaveLength(1);
    expect(deadReferences('x.ts', '/** http-api.md §Devices */')).toHaveLength(1);
    expect(deadReferences('x.ts', '// §No Such Heading anywhere')).toHaveLength(1);
    expect(deadReferences('x.ts', '// api.md §Devices: create, list')).toEqual([]);
  });
});
