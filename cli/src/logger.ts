import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

/**
 * Paths pino censors in every log line. House rule: tokens, private keys and the admin token
 * never reach a log line (also when a request or a config object is logged whole).
 */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'password',
  'token',
  'adminToken',
  'privateKey',
  'proof',
  '*.password',
  '*.token',
  '*.adminToken',
  '*.privateKey',
  '*.proof',
  'config.tlsKey',
]);

/**
 * The process logger of `latchkey up`: JSON lines on stderr (stdout carries only the address
 * lines scripts read), secrets censored.
 *
 * @example
 * ```ts
 * const log = createLogger('info');
 * log.info({ port }, 'listening');
 * ```
 */
export function createLogger(level: LogLevel): Logger {
  return pino(
    { level, base: { name: 'latchkey' }, redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } },
    pino.destination({ dest: 2, sync: true }),
  );
}
