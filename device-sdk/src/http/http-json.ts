import { DeviceClientError, HTTP_ERROR_CODES, type HttpErrorCode } from '../errors.ts';

/** Largest response body read from the provisioning API. */
const MAX_BODY_BYTES = 1_048_576;

/** GET a JSON document; non-2xx answers become coded errors (errors.md §HTTP API). */
export function getJson(url: URL, timeoutMs: number, headers: Record<string, string> = {}): Promise<unknown> {
  return requestJson(url, { method: 'GET', headers: { accept: 'application/json', ...headers } }, timeoutMs);
}

/** POST a JSON body; non-2xx answers become coded errors (errors.md §HTTP API). */
export function postJson(url: URL, body: unknown, headers: Record<string, string>, timeoutMs: number): Promise<unknown> {
  return requestJson(
    url,
    {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    },
    timeoutMs,
  );
}

async function requestJson(url: URL, init: RequestInit, timeoutMs: number): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (cause) {
    throw new DeviceClientError('network_error', `${init.method} ${url.pathname} failed: no answer`, { cause });
  }
  const text = await readBody(res);
  const json = parseJson(text);
  if (res.ok) {
    if (json === undefined) throw new DeviceClientError('invalid_response', `${url.pathname} answered with non-JSON`, { status: res.status });
    return json;
  }
  throw problemError(res.status, json, url.pathname);
}

async function readBody(res: Response): Promise<string> {
  try {
    const buf = Buffer.from(await res.arrayBuffer());
    if (buf.byteLength > MAX_BODY_BYTES) throw new DeviceClientError('invalid_response', 'response body too large', { status: res.status });
    return buf.toString('utf8');
  } catch (cause) {
    if (cause instanceof DeviceClientError) throw cause;
    throw new DeviceClientError('network_error', 'connection lost while reading the response', { cause, status: res.status });
  }
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** RFC 9457 problem details → a coded error; the `code` passes through when the SDK knows it. */
function problemError(status: number, body: unknown, path: string): DeviceClientError {
  const p = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const known = typeof p.code === 'string' && (HTTP_ERROR_CODES as readonly string[]).includes(p.code);
  const code: HttpErrorCode = known ? (p.code as HttpErrorCode) : 'http_error';
  const title = typeof p.title === 'string' ? p.title.slice(0, 200) : `HTTP ${status}`;
  const detail = typeof p.detail === 'string' ? `: ${p.detail.slice(0, 500)}` : '';
  return new DeviceClientError(code, `${path}: ${title}${detail}`, { status });
}
