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
