import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ADMIN_TOKEN_RULE, isAdminToken } from './config.ts';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * api.md §Conventions: the admin token from `<dataDir>/admin-token`, generated on first
 * start (32 random bytes, base64url) with mode 0600. An existing file readable by others is
 * tightened to 0600.
 *
 * @example
 * ```ts
 * const { token, path } = loadOrCreateAdminToken('./data'); console.log(`admin token in ${path}`);
 * ```
 */
export function loadOrCreateAdminToken(dataDir: string): { token: string; path: string; created: boolean } {
  if (typeof dataDir !== 'string' || dataDir.length === 0) throw new TypeError('dataDir must be a non-empty string');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  try {
    const token = randomBytes(32).toString('base64url');
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' }); // wx: never overwrite
    return { token, path: file, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  const token = readFileSync(file, 'utf8').trim();
  if (!isAdminToken(token)) {
    throw new TypeError(`${file} does not hold a valid admin token (${ADMIN_TOKEN_RULE})`);
  }
  return { token, path: file, created: false };
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * A constant-time check of a secret: both sides are hashed to 32 bytes first, so neither the
 * comparison time nor an early length mismatch reveals anything about it. The admin token's
 * one check ({@link AdminGate} in admin-auth.ts) is built on it.
 */
export function secretMatcher(expected: string): (candidate: unknown) => boolean {
  const expectedHash = sha256(expected);
  return (candidate) => typeof candidate === 'string' && candidate.length <= 1024 && timingSafeEqual(sha256(candidate), expectedHash);
}

/** The bearer credential of an Authorization header, or null. */
export function bearerToken(authorization: string | undefined): string | null {
  if (typeof authorization !== 'string' || authorization.length > 1024) return null;
  const m = /^Bearer ([^\s]+)$/i.exec(authorization);
  return m === null ? null : m[1]!;
}
