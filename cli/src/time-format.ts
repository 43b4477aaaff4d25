/** Times as a person reads them in the CLI's tables and messages (the API speaks epoch ms). */

const UNITS: [limitS: number, unitS: number, name: string][] = [
  [60, 1, 's'],
  [3600, 60, 'min'],
  [86_400, 3600, 'h'],
  [7 * 86_400, 86_400, 'd'],
];

/**
 * An epoch-ms time relative to `now` while it is within a week ("12 s ago", "4 min ago",
 * "in 3 h"), otherwise as an ISO 8601 UTC time to the second ("2026-11-30T15:40:12Z").
 * `null`/`undefined` (never) prints "-"; a value that is not a time prints as is.
 *
 * @example
 * ```ts
 * humanTime(Date.now() - 12_000) // '12 s ago'
 * ```
 */
export function humanTime(at: number | string | null | undefined, now: number = Date.now()): string {
  if (at === null || at === undefined) return '-';
  const ms = typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(ms)) return String(at);
  const deltaS = Math.round((now - ms) / 1000);
  const span = Math.abs(deltaS);
  if (span === 0) return 'now';
  for (const [limit, unit, name] of UNITS) {
    if (span < limit) {
      const n = Math.floor(span / unit);
      return deltaS > 0 ? `${n} ${name} ago` : `in ${n} ${name}`;
    }
  }
  return isoTime(ms);
}

/**
 * ISO 8601 UTC to the second.
 *
 * @example
 * ```ts
 * isoTime(0) // '1970-01-01T00:00:00Z'
 * ```
 */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
