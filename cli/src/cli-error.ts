/**
 * The CLI's one error class. `code` is stable (an HTTP API problem `code`, or one of the CLI's
 * own below); `detail` is one line for a human and never contains a token or a key.
 * The CLI prints it as `error: <code>: <detail>` and exits with `exitCode`.
 */

/** The CLI's own codes; API errors keep the API's `code` (http-api.md §Errors). */
export type CliErrorCode =
  | 'usage' // unknown command or option, missing or malformed argument (exit 2)
  | 'invalid_config' // a setting of `up` is invalid (cli.md §Configuration; exit 2)
  | 'key_exists' // keygen would overwrite a key
  | 'file_unreadable' // a key or PEM file cannot be read
  | 'invalid_private_key' // not a P-256 private key PEM
  | 'unsupported_private_key'
  | 'admin_token_missing' // no --admin-token, LATCHKEY_ADMIN_TOKEN or <data dir>/admin-token
  | 'api_unreachable' // the HTTP API did not answer
  | 'api_error' // the HTTP API answered without a problem document
  | 'startup_failed'; // `up` could not open the database or bind a port

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/**
 * A failure the CLI reports as one line.
 *
 * @example
 * ```ts
 * throw new CliError('usage', 'devices show needs a device id');
 * ```
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: string;
  readonly exitCode: number;
  constructor(code: CliErrorCode | (string & {}), detail: string, options?: { exitCode?: number; cause?: unknown }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.exitCode = options?.exitCode ?? (code === 'usage' || code === 'invalid_config' ? EXIT_USAGE : EXIT_FAILURE);
  }
}

/** The single line the CLI prints for an error: `error: <code>: <detail>`. */
export function formatError(e: CliError): string {
  return `error: ${e.code}: ${oneLine(e.message)}`;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
