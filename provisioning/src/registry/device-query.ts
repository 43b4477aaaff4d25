import type { RegistryContext } from './context.ts';
import type { CredentialStore } from './credentials.ts';
import { toDeviceRecord, type DeviceRow } from './device-rows.ts';
import type { DeviceRecord } from './types.ts';

/** The status filters of a device listing (docs/console.md §Devices). */
export const DEVICE_STATUS_FILTERS = ['connected', 'offline', 'blocked', 'error'] as const;
export type DeviceStatusFilter = (typeof DEVICE_STATUS_FILTERS)[number];

/** "A recent error": the device's last refused connect is this recent and later than its last accepted one. */
export const RECENT_ERROR_MS = 24 * 3_600_000;

export interface DeviceQuery {
  /** 1..1000 */
  limit: number;
  /** ids after this one (exclusive), ascending; excludes `before` */
  after?: string | null;
  /** ids before this one (exclusive): the page just before it, still returned ascending */
  before?: string | null;
  /** only ids starting with this (case-sensitive; ids are ASCII) */
  prefix?: string | null;
  status?: DeviceStatusFilter | null;
}

/** A page in id order, with the keys to the neighbouring pages (null when there is none). */
export interface DevicePage {
  items: DeviceRecord[];
  /** pass as `after` for the next page */
  next: string | null;
  /** pass as `before` for the previous page */
  prev: string | null;
}

const COLUMNS = `d.id, d.blocked, d.metadata, d.created_at,
  s.sessions, s.last_connected_at, s.last_disconnected_at, s.last_seen_at, s.last_error_code, s.last_error_at,
  (SELECT version FROM device_config c WHERE c.device_id = d.id) AS config_version`;

/**
 * Each filter walks an index in id order (the primary key, or a partial index holding only the
 * matching devices), so a page costs about `limit` rows however many devices there are, and a
 * sparse filter (3 blocked of 50,000) does not scan the rest. `key` is the column the keyset runs on.
 */
const SOURCES: Record<DeviceStatusFilter | 'all', { from: string; key: string; where: string }> = {
  all: { from: 'devices d LEFT JOIN device_status s ON s.device_id = d.id', key: 'd.id', where: '1' },
  connected: {
    from: 'device_status s INDEXED BY device_status_connected JOIN devices d ON d.id = s.device_id',
    key: 's.device_id',
    where: 's.sessions > 0',
  },
  offline: {
    from: 'devices d LEFT JOIN device_status s ON s.device_id = d.id',
    key: 'd.id',
    where: 'd.blocked = 0 AND coalesce(s.sessions, 0) = 0',
  },
  blocked: {
    from: 'devices d INDEXED BY devices_blocked LEFT JOIN device_status s ON s.device_id = d.id',
    key: 'd.id',
    where: 'd.blocked = 1',
  },
  error: {
    from: 'device_status s INDEXED BY device_status_refused JOIN devices d ON d.id = s.device_id',
    key: 's.device_id',
    where: 's.last_error_code IS NOT NULL AND s.last_error_at >= :since AND (s.last_connected_at IS NULL OR s.last_error_at > s.last_connected_at)',
  },
};

/** The SQL of one filter and direction, built once per shape and cached as a prepared statement. */
export function deviceQuerySql(filter: DeviceStatusFilter | 'all', dir: 'asc' | 'desc', part: 'page' | 'exists'): string {
  const s = SOURCES[filter];
  const cmp = dir === 'asc' ? '>' : '<';
  const where = `${s.where} AND ${s.key} ${cmp} :cursor AND ${s.key} >= :low AND ${s.key} < :high`;
  if (part === 'exists') return `SELECT 1 FROM ${s.from} WHERE ${where} LIMIT 1`;
  return `SELECT ${COLUMNS} FROM ${s.from} WHERE ${where} ORDER BY ${s.key} ${dir.toUpperCase()} LIMIT :limit`;
}

/** Above every character a device id may hold (protocol.md §Device ids: ASCII). */
const ID_CEILING = '\u007f';

/** Runs a device listing: filters, prefix and keyset paging in both directions (docs/console.md §Devices). */
export function queryDevices(ctx: RegistryContext, credentials: CredentialStore, q: DeviceQuery): DevicePage {
  if (!Number.isSafeInteger(q.limit) || q.limit < 1 || q.limit > 1000) throw new TypeError('limit must be an integer 1..1000');
  const filter = q.status ?? 'all';
  if (!(filter in SOURCES)) throw new TypeError(`status must be one of ${DEVICE_STATUS_FILTERS.join(', ')}`);
  if ((q.after ?? null) !== null && (q.before ?? null) !== null) throw new TypeError('give after or before, not both');
  const prefix = q.prefix ?? '';
  const bounds = { low: prefix, high: prefix + ID_CEILING };
  const since = ctx.clock() - RECENT_ERROR_MS;
  const params = (cursor: string, extra: object = {}) => ({ ...bounds, cursor, ...(filter === 'error' ? { since } : {}), ...extra });
  return ctx.read(() => {
    const backwards = (q.before ?? null) !== null;
    const dir = backwards ? 'desc' : 'asc';
    const cursor = backwards ? q.before! : (q.after ?? '');
    const rows = ctx.stmt(deviceQuerySql(filter, dir, 'page')).all(params(cursor, { limit: q.limit + 1 })) as DeviceRow[];
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    if (backwards) page.reverse();
    const first = page[0]?.id;
    const last = page.at(-1)?.id;
    const exists = (d: 'asc' | 'desc', from: string) => ctx.stmt(deviceQuerySql(filter, d, 'exists')).get(params(from)) !== undefined;
    const hasAfter = backwards ? last !== undefined && exists('asc', last) : more;
    const hasBefore = backwards ? more : first !== undefined && exists('desc', first);
    return {
      items: page.map((r) => toDeviceRecord(r, credentials)),
      next: hasAfter ? (last ?? null) : null,
      prev: hasBefore ? (first ?? null) : null,
    };
  });
}
