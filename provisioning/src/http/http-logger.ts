import pino, { type Logger, type LoggerOptions } from 'pino';

/**
 * Log redaction (common rules: tokens, private keys and the admin token never reach a log line).
 * Applied by `buildApp` to whatever logger it is given, via a child logger.
 */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  '*.authorization',
  'body',
  '*.body',
  'publicKey',
  '*.publicKey',
  'token',
  '*.token',
  'proof',
  '*.proof',
  'adminToken',
  '*.adminToken',
  'secret',
  '*.secret',
];

export const LOG_REDACT = { paths: LOG_REDACT_PATHS, censor: '[redacted]' } as const;

/** What a request line in the log holds (fastify logs `{req: request}`): the subset of FastifyRequest read here. */
interface LoggedRequest {
  method?: string;
  ip?: string;
  routeOptions?: { url?: string };
}

/**
 * How a request appears in the log (docs/operations.md §What is logged): its method, the route
 * it matched as declared (`/v1/devices/:id`, or `unmatched`) and the client address. Never the
 * URL as sent — its query string or path could carry a token — nor any header or the body.
 */
export function serializeRequest(request: LoggedRequest): { method: string | undefined; route: string; remoteAddress: string | undefined } {
  let route: string | undefined;
  try {
    route = request.routeOptions?.url; // throws for requests refused before routing
  } catch {
    route = undefined;
  }
  return { method: request.method, route: route ?? 'unmatched', remoteAddress: request.ip };
}

export const LOG_SERIALIZERS = {
  req: serializeRequest,
  res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
};

/**
 * A pino logger with the redaction above.
 *
 * @example
 * ```ts
 * const log = createHttpLogger({ level: 'info' });
 * ```
 */
export function createHttpLogger(options: LoggerOptions = {}, destination?: pino.DestinationStream): Logger {
  return pino({ level: 'info', ...options, redact: LOG_REDACT, serializers: { ...options.serializers, ...LOG_SERIALIZERS } }, destination as pino.DestinationStream);
}
