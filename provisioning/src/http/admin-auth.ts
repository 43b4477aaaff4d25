import type { FastifyInstance } from 'fastify';
import { bearerMatcher } from './admin-token.ts';
import { ApiError } from './api-error.ts';
import type { FailureLimiter } from './failure-limiter.ts';

/**
 * api.md §Conventions: every route registered in `app` (an encapsulated admin scope)
 * requires `Authorization: Bearer <admin token>`, compared in constant time. The token is checked
 * first, in `onRequest` (before the body is read): a correct token is never throttled, whatever
 * else came from its address. Only wrong tokens count against the address's admin budget; once
 * it is used up, wrong tokens get 429 instead of 401 until the window ends.
 */
export function requireAdmin(app: FastifyInstance, adminToken: string, throttle: FailureLimiter): void {
  const matches = bearerMatcher(adminToken);
  app.addHook('onRequest', async (request, reply) => {
    if (matches(request.headers.authorization)) return;
    if (throttle.blocked(request.ip)) throw new ApiError('rate_limited');
    throttle.fail(request.ip);
    reply.header('www-authenticate', 'Bearer realm="latchkey-admin"');
    throw new ApiError('unauthorized');
  });
}
