import { ApiError } from './api-error.ts';

/**
 * Opaque list cursors (api.md §Devices `cursor`): base64url of a versioned key, so clients
 * cannot depend on its content and a malformed one is a 400, never a query.
 */
export function encodeCursor(key: string): string {
  return Buffer.from(`v1:${key}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) throw new ApiError('validation_failed', 'cursor is not valid');
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('v1:') || text.length < 4) throw new ApiError('validation_failed', 'cursor is not valid');
  return text.slice(3);
}

/** The `limit` query parameter of a paged list (validated as 1..1000 by {@link pageQuerySchema}); 100 when absent. */
export function pageLimit(limit: string | undefined): number {
  return limit === undefined ? 100 : Number(limit);
}

/** `limit` and `cursor`, the query parameters every paged list takes (docs/api.md: devices, enrollment tokens). */
export const pageQueryProperties = {
  limit: { type: 'string', pattern: '^(?:[1-9][0-9]{0,2}|1000)$', description: '1..1000, default 100' },
  cursor: { type: 'string', maxLength: 400, description: 'the nextCursor of the previous page' },
} as const;
