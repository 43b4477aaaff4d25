import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/**
 * The rows of the code table in one `## ` section of docs/errors.md, as code → wire result
 * (HTTP status or CONNACK code). Each row must say what the code means and how to fix it.
 */
export function documentedCodes(section: string): Map<string, number> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const start = text.indexOf(`## ${section}`);
  expect(start, `docs/errors.md has no "## ${section}"`).toBeGreaterThanOrEqual(0);
  const next = text.indexOf('\n## ', start + 1);
  const rows = new Map<string, number>();
  for (const line of text.slice(start, next === -1 ? undefined : next).split('\n')) {
    const m = /^\|\s*`([a-z_]+)`\s*\|\s*(\d+)\s*\|(.+)\|(.+)\|\s*$/.exec(line);
    if (m === null) continue;
    expect(rows.has(m[1]!), `${m[1]} documented twice`).toBe(false);
    expect(m[3]!.trim().length, `${m[1]} has no meaning`).toBeGreaterThan(10);
    expect(m[4]!.trim().length, `${m[1]} has no fix`).toBeGreaterThan(5);
    rows.set(m[1]!, Number(m[2]));
  }
  return rows;
}
