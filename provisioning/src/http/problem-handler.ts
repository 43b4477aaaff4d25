import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, problemOf, type ApiErrorCode } from './api-error.ts';
import { toApiError } from './error-mapping.ts';

function logRefusal(request: FastifyRequest, api: ApiError, error: unknown): void {
  if (api.status >= 500) request.log.error({ err: api.cause ?? error }, 'request failed');
  else request.log.info({ code: api.code }, 'request refused');
}

function sendProblem(reply: FastifyReply, api: ApiError): FastifyReply {
  if (api.code === 'rate_limited') reply.header('retry-after', '60');
  return reply.code(api.status).type('application/problem+json').send(problemOf(api));
}

/**
 * One exit for every refusal (errors.md §HTTP API): RFC 9457 problem+json, status from the one
 * table. A 500 carries no detail; its cause goes to the server log only. No detail ever echoes
 * the request's path, query or body.
 */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const api = toApiError(error);
    logRefusal(request, api, error);
    return sendProblem(reply, api);
  });
  app.setNotFoundHandler((request, reply) => {
    request.log.info({ code: 'not_found' }, 'request refused');
    return sendProblem(reply, new ApiError('not_found', 'no route matches this method and path'));
  });
}

/**
 * fastify's `frameworkErrors`: what the router refuses before any route runs (bad percent-encoding
 * in the URL, a path parameter over `maxParamLength`). fastify's own answers echo the path.
 */
export function frameworkErrorHandler(error: Error, request: FastifyRequest, reply: FastifyReply): void {
  const api = toApiError(error);
  logRefusal(request, api, error);
  void sendProblem(reply, api);
}

/** Node's HTTP parser errors (no request object exists yet), by their `code`. */
const CLIENT_ERROR_CODES: Record<string, ApiErrorCode> = {
  HPE_HEADER_OVERFLOW: 'headers_too_large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request_timeout',
};

/**
 * fastify's `clientErrorHandler` (Node's `clientError`): a request Node could not parse — too
 * large a request line and headers (431), too slow (408), or not HTTP at all (400) — gets a
 * problem+json answer on the raw socket, then the connection is closed.
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const api = new ApiError(CLIENT_ERROR_CODES[error.code ?? ''] ?? 'malformed_request');
  this.log.debug({ code: api.code }, 'request refused before parsing');
  if (socket.writable) {
    const body = JSON.stringify(problemOf(api));
    socket.write(
      `HTTP/1.1 ${api.status} ${STATUS_CODES[api.status]}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
