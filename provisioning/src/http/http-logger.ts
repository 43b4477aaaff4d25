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

/**
 * A pino logger with the redaction above.
 *
 * @example
 * ```ts
 * const log = createHttpLogger({ level: 'info' });
 * ```
 */
export function createHttpLogger(options: LoggerOptions = {}, destination?: pino.DestinationStream): Logger {
  return pino({ level: 'info', ...options, redact: LOG_REDACT }, destination as pino.DestinationStream);
}
