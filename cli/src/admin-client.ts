import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isApiErrorCode } from '@latchkey/provisioning/errors';
import { CliError } from './cli-error.ts';

/** Where the admin commands find the API and the admin token (docs/configuration.md). */
export interface AdminTarget {
  baseUrl: URL;
  adminToken: string;
}

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Resolves the API URL (`--url`, `LATCHKEY_URL`, default http://127.0.0.1:8080) and the admin
 * token (`--admin-token`, `LATCHKEY_ADMIN_TOKEN`, else `<data dir>/admin-token` where the data
 * dir is `--data-dir`, `LATCHKEY_DATA_DIR` or `./data`, as written by `latchkey up`).
 *
 * @example
 * ```ts
 * const target = await resolveAdminTarget({ url: undefined, adminToken: undefined, dataDir: undefined }, env, cwd);
 * ```
 */
export async function resolveAdminTarget(
  flags: { url?: string | undefined; adminToken?: string | undefined; dataDir?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): Promise<AdminTarget> {
  const rawUrl = flags.url ?? nonEmpty(env.LATCHKEY_URL) ?? DEFAULT_API_URL;
  let baseUrl: URL;
  try {
    baseUrl = new URL(rawUrl);
  } catch {
    throw new CliError('usage', `--url (LATCHKEY_URL) must be an http(s) URL`);
  }
  if (baseUrl.protocol !== 'http:' && baseUrl.protocol !== 'https:') throw new CliError('usage', '--url (LATCHKEY_URL) must be an http(s) URL');
  if (baseUrl.username !== '' || baseUrl.password !== '') throw new CliError('usage', '--url (LATCHKEY_URL) must not carry credentials; use --admin-token');
  const fromFlagOrEnv = flags.adminToken ?? nonEmpty(env.LATCHKEY_ADMIN_TOKEN);
  if (fromFlagOrEnv !== undefined) return { baseUrl, adminToken: fromFlagOrEnv.trim() };
  const file = path.resolve(cwd, flags.dataDir ?? nonEmpty(env.LATCHKEY_DATA_DIR) ?? './data', 'admin-token');
  let token: string;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch {
    throw new CliError('admin_token_missing', `no admin token: pass --admin-token, set LATCHKEY_ADMIN_TOKEN, or run from the directory holding data/admin-token`);
  }
  if (token.length === 0) throw new CliError('admin_token_missing', `${file} is empty`);
  return { baseUrl, adminToken: token };
}

/** An environment variable's value; empty counts as unset. */
export function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** A successful answer of the API. */
export interface ApiResponse<T> {
  status: number;
  body: T;
}

/**
 * A minimal client of the provisioning HTTP API's admin routes (docs/api.md). A problem document
 * (RFC 9457) becomes a CliError with the API's `code`; no token reaches an error.
 *
 * @example
 * ```ts
 * const api = new AdminClient(await resolveAdminTarget({}, process.env, process.cwd()));
 * const { body } = await api.request<{ devices: unknown[] }>('GET', '/v1/devices');
 * ```
 */
export class AdminClient {
  readonly #target: AdminTarget;
  constructor(target: AdminTarget) {
    this.#target = target;
  }

  /**
   * `body` is sent as JSON; `opts.rawJson` sends JSON text exactly as given instead (a file, whose
   * numbers must not pass through `JSON.parse`). A refusal's problem document is the CliError's `cause`.
   */
  async request<T>(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', route: string, body?: unknown, opts?: { rawJson?: string; timeoutMs?: number }): Promise<ApiResponse<T>> {
    const url = new URL(route.replace(/^\//, ''), this.#target.baseUrl.href.endsWith('/') ? this.#target.baseUrl : `${this.#target.baseUrl.href}/`);
    const headers: Record<string, string> = { authorization: `Bearer ${this.#target.adminToken}`, accept: 'application/json' };
    const payload = opts?.rawJson ?? (body !== undefined ? JSON.stringify(body) : undefined);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(payload !== undefined ? { body: payload } : {}),
        signal: AbortSignal.timeout(opts?.timeoutMs ?? REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
      throw new CliError('api_unreachable', `cannot reach ${this.#target.baseUrl.origin} (${cause}); is latchkey up running there?`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (res.ok) return { status: res.status, body: parsed as T };
    const problem = parsed as { code?: unknown; detail?: unknown; title?: unknown } | undefined;
    if (problem !== undefined && typeof problem === 'object' && problem !== null && typeof problem.code === 'string') {
      const detail = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : `HTTP ${res.status}`;
      // docs/errors.md: the API's code as it is; one this CLI does not know is reported as api_error
      if (isApiErrorCode(problem.code)) throw new CliError(problem.code, detail, { cause: problem });
      throw new CliError('api_error', `${method} ${url.pathname} answered HTTP ${res.status} ${problem.code.slice(0, 64)}: ${detail}`);
    }
    throw new CliError('api_error', `${method} ${url.pathname} answered HTTP ${res.status}`);
  }
}
