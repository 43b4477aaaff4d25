import { isApiErrorCode, type Problem } from '@latchkey/provisioning';
import type { FastifyInstance } from 'fastify';

/** A refusal of the HTTP API (RFC 9457 problem+json, docs/errors.md), as the console reads it. */
export type ApiRefusal = Pick<Problem, 'status' | 'code' | 'title' | 'detail'>;

export type ApiResult = { ok: true; status: number; body: any } | { ok: false; problem: ApiRefusal };

export type AdminApi = (method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown) => Promise<ApiResult>;

/**
 * The console's every change is a request to the documented HTTP API (docs/api.md), made
 * in-process on the same fastify instance with the admin token. So each write has one owner —
 * validation, the refusal codes, the audit entry, and its side effects (closing sessions on
 * block, publishing the retained config, clearing it on delete, the command round trip) — and
 * the console cannot drift from what `curl` and the CLI get.
 *
 * @example
 * ```ts
 * const r = await api('PATCH', '/v1/devices/thermo-1', { blocked: true });
 * if (!r.ok) show(r.problem.detail);
 * ```
 */
export function adminApi(app: FastifyInstance, adminToken: string): AdminApi {
  const authorization = `Bearer ${adminToken}`;
  return async (method, url, body) => {
    const res = await app.inject({
      method,
      url,
      headers: body === undefined ? { authorization } : { authorization, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    const parsed = res.body.length > 0 && /json/.test(String(res.headers['content-type'])) ? (JSON.parse(res.body) as any) : null;
    if (res.statusCode < 400) return { ok: true, status: res.statusCode, body: parsed };
    return {
      ok: false,
      problem: {
        status: res.statusCode,
        code: isApiErrorCode(parsed?.code) ? parsed.code : 'internal_error',
        title: typeof parsed?.title === 'string' ? parsed.title : 'The request failed',
        detail: typeof parsed?.detail === 'string' ? parsed.detail : 'The request failed',
      },
    };
  };
}
