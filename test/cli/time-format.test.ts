import { describe, expect, it } from 'vitest';
import { formatDeviceTable } from '../../cli/src/commands/device-table.ts';
import { humanTime, isoTime } from '../../cli/src/time-format.ts';

const NOW = Date.UTC(2026, 10, 30, 15, 40, 12);

describe('times as a person reads them (CLI tables and messages)', () => {
  it('relative within a week, in whole units, past and future', () => {
    expect(humanTime(NOW, NOW)).toBe('now');
    expect(humanTime(NOW - 12_000, NOW)).toBe('12 s ago');
    expect(humanTime(NOW - 59_400, NOW)).toBe('59 s ago');
    expect(humanTime(NOW - 60_000, NOW)).toBe('1 min ago');
    expect(humanTime(NOW - 3_599_000, NOW)).toBe('59 min ago');
    expect(humanTime(NOW - 3 * 3_600_000 - 5_000, NOW)).toBe('3 h ago');
    expect(humanTime(NOW - 2 * 86_400_000, NOW)).toBe('2 d ago');
    expect(humanTime(NOW + 5 * 60_000, NOW)).toBe('in 5 min');
  });

  it('an ISO 8601 UTC time to the second beyond a week; "-" for never; ISO strings too', () => {
    expect(humanTime(NOW - 7 * 86_400_000, NOW)).toBe('2026-11-23T15:40:12Z');
    expect(humanTime(NOW + 30 * 86_400_000, NOW)).toBe('2026-12-30T15:40:12Z');
    expect(humanTime(null, NOW)).toBe('-');
    expect(humanTime(undefined, NOW)).toBe('-');
    expect(humanTime('2026-11-30T15:40:00Z', NOW)).toBe('12 s ago');
    expect(humanTime('not a time', NOW)).toBe('not a time');
    expect(isoTime(0)).toBe('1970-01-01T00:00:00Z');
  });

  it('the devices table shows created and last-seen times that way, never epoch milliseconds', () => {
    const table = formatDeviceTable(
      [
        { id: 'thermo-1', blocked: false, createdAt: NOW - 2 * 86_400_000, credentials: [{ kid: 'k', fingerprint: 'f' }], status: { connected: true, lastSeenAt: NOW - 12_000, lastError: null } },
        { id: 'lock-1', blocked: true, createdAt: NOW - 30 * 86_400_000, status: { connected: false, lastSeenAt: null, lastError: { code: 'token_expired' } } },
      ],
      NOW,
    );
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^ID\s+BLOCKED\s+CONNECTED\s+KEYS\s+CREATED\s+LAST SEEN\s+LAST ERROR$/);
    expect(lines[1]).toMatch(/^thermo-1\s+no\s+yes\s+1\s+2 d ago\s+12 s ago\s+-$/);
    expect(lines[2]).toMatch(/^lock-1\s+yes\s+no\s+0\s+2026-10-31T15:40:12Z\s+-\s+token_expired$/);
    expect(table).not.toMatch(/\d{10,}/);
  });
});
