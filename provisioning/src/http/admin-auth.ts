import type { FastifyInstance } from 'fastify';
import { bearerMatcher } from './admin-token.ts';
import { ApiError } from './api-error.ts';
import type { FailureLimiter } from './failure-limiter.ts';

/**
 * api.md §Conventions: every route registered in `app` (an encapsulated admin scope)
 * requires `Authorization: Bearer <admin token>`, compared in constant time. Repeated refusals
 * from one address are throttled (429) before the token is even looked at.
 */
export function requireAdmin(app: FastifyInstance, adminToken: string, limiter: FailureLimiter): void {
  const matches = bearerMatcher(adminToken);
  app.addHook('onRequest', async (request, reply) => {
    if (limiter.blocked(request.ip)) throw new ApiError('rate_limited');
    if (!matches(request.headers.authorization)) {
      limiter.fail(request.ip);
      reply.header('www-authenticate', 'Bearer realm="latchkey-admin"');
      throw new ApiError('unauthorized');
    }
  });
}
