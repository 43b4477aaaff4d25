import { humanTime } from '../time-format.ts';

/** The device resource of api.md §Devices (the fields the CLI shows). */
export interface DeviceResource {
  id: string;
  blocked: boolean;
  metadata?: Record<string, unknown>;
  createdAt?: string | number | null;
  credentials?: { kid: string; fingerprint: string; createdAt?: unknown; expiresAt?: unknown }[];
  status?: { connected?: boolean; lastSeenAt?: string | number | null; lastError?: { code: string } | null };
}

/**
 * Devices as an aligned text table for `latchkey devices list`; times as a person reads them
 * ("12 s ago", or an ISO time beyond a week), relative to `now`.
 *
 * @example
 * ```ts
 * formatDeviceTable([{ id: 'thermo-1', blocked: false }])
 * ```
 */
export function formatDeviceTable(devices: readonly DeviceResource[], now: number = Date.now()): string {
  const rows = [
    ['ID', 'BLOCKED', 'CONNECTED', 'KEYS', 'CREATED', 'LAST SEEN', 'LAST ERROR'],
    ...devices.map((d) => [
      d.id,
      d.blocked ? 'yes' : 'no',
      d.status?.connected === true ? 'yes' : 'no',
      String(d.credentials?.length ?? 0),
      humanTime(d.createdAt, now),
      humanTime(d.status?.lastSeenAt, now),
      d.status?.lastError?.code ?? '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  if (devices.length === 0) lines.push('(no devices)');
  return lines.join('\n');
}
