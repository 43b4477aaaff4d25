import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_ERROR_STATUS } from '../../provisioning/src/http/api-error.ts';

const DOC = new URL('../../docs/errors.md', import.meta.url);

/** The rows of the table under `## HTTP API`, as code → status. */
function documentedHttpCodes(): Map<string, number> {
  const text = readFileSync(DOC, 'utf8');
  const start = text.indexOf('## HTTP API');
  expect(start).toBeGreaterThanOrEqual(0);
  const next = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, next === -1 ? undefined : next);
  const rows = new Map<string, number>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|(.+)\|(.+)\|\s*$/.exec(line);
    if (m === null) continue;
    expect(rows.has(m[1]!), `${m[1]} documented twice`).toBe(false);
    expect(m[3]!.trim().length, `${m[1]} has no meaning`).toBeGreaterThan(10);
    expect(m[4]!.trim().length, `${m[1]} has no fix`).toBeGreaterThan(5);
    rows.set(m[1]!, Number(m[2]));
  }
  return rows;
}

describe('docs/errors.md', () => {
  it('documents exactly the ApiErrorCode union, each with its HTTP status', () => {
    const documented = documentedHttpCodes();
    expect([...documented.keys()].sort()).toEqual(Object.keys(API_ERROR_STATUS).sort());
    for (const [code, status] of Object.entries(API_ERROR_STATUS)) expect(documented.get(code), code).toBe(status);
  });
});
