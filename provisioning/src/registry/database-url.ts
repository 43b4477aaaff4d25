/**
 * The PostgreSQL URL of a registry (`latchkey up --database-url`, docs/configuration.md): its one
 * check, and its redaction. The URL usually carries a password: it never reaches a log line, an
 * error message or a problem body, only `redactDatabaseUrl`'s form of it does.
 */

/**
 * Checks a registry database URL: `postgres://` or `postgresql://`, with a host. The message never
 * repeats the URL (it may hold a password).
 *
 * @example
 * ```ts
 * checkDatabaseUrl('postgres://latchkey:s3cret@db.internal:5432/latchkey') // { ok: true, url: … }
 * ```
 */
export function checkDatabaseUrl(text: unknown): { ok: true; url: string } | { ok: false; message: string } {
  const rule = 'must be a postgres://[user[:password]@]host[:port]/database URL';
  if (typeof text !== 'string' || text.length === 0 || text.length > 4096) return { ok: false, message: rule };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: `${rule} (it does not parse)` };
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return { ok: false, message: `${rule} (scheme ${JSON.stringify(url.protocol.slice(0, 16))})` };
  if (url.hostname === '' && !url.searchParams.has('host')) return { ok: false, message: `${rule} (no host)` };
  return { ok: true, url: text };
}

/**
 * The URL with its password (and any `password=` parameter) replaced by `***`, for logs and
 * messages; a text that does not parse as a URL is replaced whole.
 *
 * @example
 * ```ts
 * redactDatabaseUrl('postgres://latchkey:s3cret@db:5432/lk') // 'postgres://latchkey:***@db:5432/lk'
 * ```
 */
export function redactDatabaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '[database URL]';
  }
  if (url.password !== '') url.password = '***';
  for (const key of [...url.searchParams.keys()]) if (/pass/i.test(key)) url.searchParams.set(key, '***');
  return url.toString();
}

/** `text` with every occurrence of the URL's password replaced by `***` (for messages from drivers and the OS). */
export function redactPassword(text: string, databaseUrl: string): string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(databaseUrl).password);
  } catch {
    return text;
  }
  return password.length === 0 ? text : text.split(password).join('***');
}
