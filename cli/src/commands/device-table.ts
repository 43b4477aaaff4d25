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
 * Devices as an aligned text table for `latchkey devices list`.
 *
 * @example
 * ```ts
 * formatDeviceTable([{ id: 'thermo-1', blocked: false }])
 * ```
 */
export function formatDeviceTable(devices: readonly DeviceResource[]): string {
  const rows = [
    ['ID', 'BLOCKED', 'CONNECTED', 'KEYS', 'LAST SEEN', 'LAST ERROR'],
    ...devices.map((d) => [
      d.id,
      d.blocked ? 'yes' : 'no',
      d.status?.connected === true ? 'yes' : 'no',
      String(d.credentials?.length ?? 0),
      d.status?.lastSeenAt == null ? '-' : String(d.status.lastSeenAt),
      d.status?.lastError?.code ?? '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  if (devices.length === 0) lines.push('(no devices)');
  return lines.join('\n');
}
