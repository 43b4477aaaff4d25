/**
 * The CLI's one error class (a `CodedError` of the protocol core). `code` is stable: one of the
 * CLI's own below, or the code of the layer that failed (an HTTP API problem `code`, an SDK code);
 * `detail` is one line for a human and never contains a token or a key.
 * The CLI prints it as `error: <code>: <detail>` and exits with `exitCode`.
 */
import type { DeviceClientErrorCode, DeviceKeyErrorCode } from '@latchkey/device-sdk';
// the error base alone (not the protocol core): `latchkey token` stays light
import { CodedError } from '@latchkey/device-sdk/errors';
import type { ApiErrorCode } from '@latchkey/provisioning/errors';

/** The CLI's own codes. */
export type CliOwnErrorCode =
  | 'usage' // unknown command or option, missing or malformed argument (exit 2)
  | 'invalid_config' // a setting of `up` is invalid (docs/configuration.md; exit 2)
  | 'file_unreadable' // a key or PEM file cannot be read
  | 'admin_token_missing' // no --admin-token, LATCHKEY_ADMIN_TOKEN or <data dir>/admin-token
  | 'api_unreachable' // the HTTP API did not answer
  | 'api_error' // the HTTP API answered without a problem document, or with a code this CLI does not know
  | 'startup_failed' // `up` could not open the database or bind a port
  | 'internal'; // a bug: anything else that was thrown

/** Every code the CLI prints: its own, the HTTP API's (docs/errors.md), and the SDK's (keys, connects, enrollment). */
export type CliErrorCode = CliOwnErrorCode | ApiErrorCode | DeviceClientErrorCode | DeviceKeyErrorCode;

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
export class CliError extends CodedError<CliErrorCode> {
  override readonly name = 'CliError';
  readonly exitCode: number;
  constructor(code: CliErrorCode, detail: string, options?: { exitCode?: number; cause?: unknown }) {
    super(code, detail, options);
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
