/**
 * The registry's one error class (a `CodedError` of the protocol core). Codes are stable; the HTTP layer maps each to a status through
 * its exhaustive table. A SqliteError never leaves the registry: constraint violations become
 * precise codes, anything else becomes `internal_error` with no detail (the cause is kept for
 * server-side logs only).
 */

import { CodedError, isCodedError } from '@latchkey/device-sdk/protocol';

export const REGISTRY_ERROR_CODES = [
  'device_exists',
  'device_not_found',
  'key_in_use',
  'credential_limit',
  'credential_not_found',
  'service_exists',
  'service_not_found',
  'enrollment_token_invalid',
  'enrollment_token_not_found',
  'device_id_not_allowed',
  'config_version_mismatch',
  'batch_rejected',
  'internal_error',
] as const;

export type RegistryErrorCode = (typeof REGISTRY_ERROR_CODES)[number];

/** One refused item of a batch, by its index in the input. */
export interface BatchItemError {
  index: number;
  code: RegistryErrorCode;
}

/**
 * A registry operation was refused.
 *
 * @example
 * ```ts
 * try { registry.devices.create(input, 'admin') }
 * catch (e) { if (isRegistryError(e, 'device_exists')) reply409() }
 * ```
 */
export class RegistryError<C extends RegistryErrorCode = RegistryErrorCode> extends CodedError<C> {
  override readonly name = 'RegistryError';
  /** For `batch_rejected`: every refused item, by index. Empty otherwise. */
  readonly items: readonly BatchItemError[];
  constructor(code: C, message: string, options?: { cause?: unknown; items?: readonly BatchItemError[] }) {
    super(code, message, options);
    this.items = options?.items ?? [];
  }
}

/** Type guard: `e` is a RegistryError, optionally with one of the given codes. */
export function isRegistryError<C extends RegistryErrorCode>(e: unknown, ...codes: C[]): e is RegistryError<C> {
  return isCodedError(e, RegistryError, codes);
}

/** Unique constraints whose violation is a caller error with a precise code. */
const CONSTRAINT_CODES: ReadonlyArray<readonly [string, RegistryErrorCode]> = [
  ['devices.id', 'device_exists'],
  ['services.name', 'service_exists'],
  ['credentials.fingerprint', 'key_in_use'],
];

/**
 * Maps anything thrown inside a registry operation to a RegistryError. SQLite's constraint
 * messages name the column (`UNIQUE constraint failed: devices.id`); only those listed above
 * become caller errors. Everything else is a bug or an I/O fault: `internal_error`, no detail.
 */
export function toRegistryError(e: unknown): RegistryError {
  if (e instanceof RegistryError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const message = (e as { message?: unknown } | null)?.message;
  if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT') && typeof message === 'string') {
    for (const [column, mapped] of CONSTRAINT_CODES) {
      if (message.includes(`constraint failed: ${column}`)) return new RegistryError(mapped, mapped.replace(/_/g, ' '));
    }
  }
  return new RegistryError('internal_error', 'internal registry error', { cause: e });
}
