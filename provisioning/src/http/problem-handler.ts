import type { FastifyInstance } from 'fastify';
import { ApiError, problemOf } from './api-error.ts';
import { toApiError } from './error-mapping.ts';

/**
 * One exit for every refusal (errors.md §HTTP API): RFC 9457 problem+json, status from the one
 * table. A 500 carries no detail; its cause goes to the server log only.
 */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const api = toApiError(error);
    if (api.status >= 500) request.log.error({ err: api.cause ?? error }, 'request failed');
    else request.log.info({ code: api.code }, 'request refused');
    if (api.code === 'rate_limited') reply.header('retry-after', '60');
    return reply.code(api.status).type('application/problem+json').send(problemOf(api));
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError('not_found', 'no route matches this method and path');
    return reply.code(api.status).type('application/problem+json').send(problemOf(api));
  });
}
