/**
 * The error base of every layer (protocol/errors.ts says who extends it). A module of its own with
 * no imports, published as `@latchkey/device-sdk/errors`, so that a layer can extend it without
 * loading the protocol core (the `latchkey` command's CliError).
 */

/**
 * A failure with a stable `code` from its layer's union. `message` is safe to show an operator: it
 * never contains a token, a key or any other secret.
 *
 * @example
 * ```ts
 * class RegistryError extends CodedError<RegistryErrorCode> { override readonly name = 'RegistryError'; }
 * ```
 */
export class CodedError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/**
 * `e` is an instance of `errorClass`, with one of `codes` when any are given: the one type guard
 * behind each layer's own (`isProtocolError`, `isRegistryError`, …).
 */
export function isCodedError<E extends CodedError>(e: unknown, errorClass: abstract new (...args: never[]) => E, codes: readonly string[]): e is E {
  return e instanceof errorClass && (codes.length === 0 || codes.includes(e.code));
}
