import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AUTH_FAILURE_CODES, CONNACK_FOR } from '@latchkey/device-sdk/protocol';

/** docs/errors.md §MQTT CONNECT refusals, as reason → CONNACK code. */
function documentedConnectReasons(): Map<string, number> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const start = text.indexOf('## MQTT CONNECT refusals');
  expect(start).toBeGreaterThanOrEqual(0);
  const next = text.indexOf('\n## ', start + 1);
  const rows = new Map<string, number>();
  for (const line of text.slice(start, next === -1 ? undefined : next).split('\n')) {
    const m = /^\|\s*`([a-z_]+)`\s*\|\s*(\d)\s*\|(.+)\|(.+)\|\s*$/.exec(line);
    if (m === null) continue;
    expect(rows.has(m[1]!), `${m[1]} documented twice`).toBe(false);
    expect(m[3]!.trim().length, `${m[1]} has no meaning`).toBeGreaterThan(10);
    expect(m[4]!.trim().length, `${m[1]} has no fix`).toBeGreaterThan(5);
    rows.set(m[1]!, Number(m[2]));
  }
  return rows;
}

describe('docs/errors.md §MQTT CONNECT refusals', () => {
  it('documents exactly the AuthFailureCode union, each with its CONNACK code', () => {
    const documented = documentedConnectReasons();
    expect([...documented.keys()].sort()).toEqual([...AUTH_FAILURE_CODES].sort());
    for (const code of AUTH_FAILURE_CODES) expect(documented.get(code), code).toBe(CONNACK_FOR[code]);
  });
});
