import type { RegistryContext } from './context.ts';
import { deviceSelect, groupDevices, type DeviceRow } from './device-rows.ts';
import { all, get, type Plan, type SqlText } from './plan.ts';
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

interface Source {
  /** per dialect: SQLite names the partial index (`INDEXED BY`), PostgreSQL's planner picks it */
  from: SqlText;
  key: string;
  /** per dialect: SQLite's booleans are 0/1 (and its partial index's WHERE must be matched as written) */
  where: SqlText;
  /** the filter takes the "recent" bound as its first parameter */
  since: boolean;
}

const both = (text: string): SqlText => ({ sqlite: text, postgres: text });

/**
 * Each filter walks an index in id order (the primary key, or a partial index holding only the
 * matching devices; migration 3 on both dialects), so a page costs about `limit` rows however many
 * devices there are, and a sparse filter (3 blocked of 50,000) does not scan the rest. `key` is
 * the column the keyset runs on.
 */
const SOURCES: Record<DeviceStatusFilter | 'all', Source> = {
  all: { from: both('devices d LEFT JOIN device_status s ON s.device_id = d.id'), key: 'd.id', where: both('TRUE'), since: false },
  connected: {
    from: {
      sqlite: 'device_status s INDEXED BY device_status_connected JOIN devices d ON d.id = s.device_id',
      postgres: 'device_status s JOIN devices d ON d.id = s.device_id',
    },
    key: 's.device_id',
    where: both('s.sessions > 0'),
    since: false,
  },
  offline: {
    from: both('devices d LEFT JOIN device_status s ON s.device_id = d.id'),
    key: 'd.id',
    where: { sqlite: 'd.blocked = 0 AND coalesce(s.sessions, 0) = 0', postgres: 'NOT d.blocked AND coalesce(s.sessions, 0) = 0' },
    since: false,
  },
  blocked: {
    from: {
      sqlite: 'devices d INDEXED BY devices_blocked LEFT JOIN device_status s ON s.device_id = d.id',
      postgres: 'devices d LEFT JOIN device_status s ON s.device_id = d.id',
    },
    key: 'd.id',
    where: { sqlite: 'd.blocked = 1', postgres: 'd.blocked' },
    since: false,
  },
  error: {
    from: {
      sqlite: 'device_status s INDEXED BY device_status_refused JOIN devices d ON d.id = s.device_id',
      postgres: 'device_status s JOIN devices d ON d.id = s.device_id',
    },
    key: 's.device_id',
    where: both('s.last_error_code IS NOT NULL AND s.last_error_at >= ? AND (s.last_connected_at IS NULL OR s.last_error_at > s.last_connected_at)'),
    since: true,
  },
};

/**
 * The SQL of one filter and direction: the ids of a page (`page`, parameters: [since], cursor, low,
 * high, limit) or whether one more exists (`exists`: the same without limit). The records of the
 * page's ids are read with the one device query (device-rows.ts).
 */
export function deviceQuerySql(filter: DeviceStatusFilter | 'all', dir: 'asc' | 'desc', part: 'page' | 'exists'): SqlText {
  const s = SOURCES[filter];
  const cmp = dir === 'asc' ? '>' : '<';
  const build = (d: 'sqlite' | 'postgres'): string => {
    const where = `${s.where[d]} AND ${s.key} ${cmp} ? AND ${s.key} >= ? AND ${s.key} < ?`;
    if (part === 'exists') return `SELECT 1 AS found FROM ${s.from[d]} WHERE ${where} LIMIT 1`;
    return `SELECT ${s.key} AS id FROM ${s.from[d]} WHERE ${where} ORDER BY ${s.key} ${dir.toUpperCase()} LIMIT ?`;
  };
  return { sqlite: build('sqlite'), postgres: build('postgres') };
}

/** Every page query, built once. */
const QUERIES = new Map<string, SqlText>();
function queryOf(filter: DeviceStatusFilter | 'all', dir: 'asc' | 'desc', part: 'page' | 'exists'): SqlText {
  const k = `${filter} ${dir} ${part}`;
  let q = QUERIES.get(k);
  if (q === undefined) {
    q = deviceQuerySql(filter, dir, part);
    QUERIES.set(k, q);
  }
  return q;
}

/** The records of a page's ids, in id order (one query: device-rows.ts). */
const RECORDS: SqlText = (() => {
  const sqlite = deviceSelect('SELECT * FROM devices WHERE id IN (SELECT value FROM json_each(?))').sqlite;
  const postgres = deviceSelect('SELECT * FROM devices WHERE id IN (SELECT json_array_elements_text(?::json))').postgres;
  return { sqlite, postgres };
})();

/** Above every character a device id may hold (protocol.md §Device ids: ASCII). */
const ID_CEILING = '\u007f';

/** Runs a device listing: filters, prefix and keyset paging in both directions (docs/console.md §Devices). */
export function queryDevices(ctx: RegistryContext, q: DeviceQuery): Promise<DevicePage> {
  if (!Number.isSafeInteger(q.limit) || q.limit < 1 || q.limit > 1000) return Promise.reject(new TypeError('limit must be an integer 1..1000'));
  const filter = q.status ?? 'all';
  if (!Object.hasOwn(SOURCES, filter)) return Promise.reject(new TypeError(`status must be one of ${DEVICE_STATUS_FILTERS.join(', ')}`));
  if ((q.after ?? null) !== null && (q.before ?? null) !== null) return Promise.reject(new TypeError('give after or before, not both'));
  const prefix = q.prefix ?? '';
  const since = ctx.clock() - RECENT_ERROR_MS;
  const params = (cursor: string): unknown[] => [...(SOURCES[filter].since ? [since] : []), cursor, prefix, prefix + ID_CEILING];
  return ctx.read(function* (): Plan<DevicePage> {
    const backwards = (q.before ?? null) !== null;
    const dir = backwards ? 'desc' : 'asc';
    const cursor = backwards ? (q.before as string) : (q.after ?? '');
    const ids = (yield* all<{ id: string }>(queryOf(filter, dir, 'page'), ...params(cursor), q.limit + 1)).map((r) => r.id);
    const more = ids.length > q.limit;
    const page = ids.slice(0, q.limit);
    if (backwards) page.reverse();
    const first = page[0];
    const last = page.at(-1);
    const exists = function* (d: 'asc' | 'desc', from: string): Plan<boolean> {
      return (yield* get(queryOf(filter, d, 'exists'), ...params(from))) !== undefined;
    };
    const hasAfter = backwards ? last !== undefined && (yield* exists('asc', last)) : more;
    const hasBefore = backwards ? more : first !== undefined && (yield* exists('desc', first));
    const items = page.length === 0 ? [] : groupDevices(yield* all<DeviceRow>(RECORDS, JSON.stringify(page)));
    return { items, next: hasAfter ? (last ?? null) : null, prev: hasBefore ? (first ?? null) : null };
  });
}
