import path from 'node:path';

/**
 * `file` as the user would type it from `cwd`: relative when inside `cwd`, absolute otherwise.
 *
 * @example
 * ```ts
 * displayPath('/repo', '/repo/data/admin-token') // 'data/admin-token'
 * ```
 */
export function displayPath(cwd: string, file: string): string {
  const abs = path.resolve(cwd, file);
  const rel = path.relative(cwd, abs);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel;
}
