/**
 * The registry's one error class (a `CodedError` of the protocol core). Codes are stable; the HTTP layer maps each to a status through
 * its exhaustive table. A SqliteError or a PostgreSQL error never leaves the registry: constraint violations become
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
  'credential_in_use',
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

/**
 * Unique constraints whose violation is a caller error with a precise code: SQLite names the column
 * in its message (`UNIQUE constraint failed: devices.id`), PostgreSQL names the constraint
 * (SQLSTATE 23505, `constraint: 'devices_pkey'`).
 */
const CONSTRAINT_CODES: ReadonlyArray<{ sqlite: string; postgres: string; code: RegistryErrorCode }> = [
  { sqlite: 'devices.id', postgres: 'devices_pkey', code: 'device_exists' },
  { sqlite: 'services.name', postgres: 'services_pkey', code: 'service_exists' },
  { sqlite: 'credentials.fingerprint', postgres: 'credentials_fingerprint_key', code: 'key_in_use' },
];

/** PostgreSQL's SQLSTATE for a unique violation. */
const PG_UNIQUE_VIOLATION = '23505';

/**
 * Maps anything thrown inside a registry operation to a RegistryError. Only the constraints listed
 * above become caller errors; everything else (a bug, an I/O fault, a lost connection, a database
 * that is down) is `internal_error` with no detail: the cause is kept for server-side logs only.
 */
export function toRegistryError(e: unknown): RegistryError {
  if (e instanceof RegistryError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const message = (e as { message?: unknown } | null)?.message;
  if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT') && typeof message === 'string') {
    for (const c of CONSTRAINT_CODES) {
      if (message.includes(`constraint failed: ${c.sqlite}`)) return new RegistryError(c.code, c.code.replace(/_/g, ' '));
    }
  }
  const constraint = (e as { constraint?: unknown } | null)?.constraint;
  if (code === PG_UNIQUE_VIOLATION && typeof constraint === 'string') {
    for (const c of CONSTRAINT_CODES) {
      if (constraint === c.postgres) return new RegistryError(c.code, c.code.replace(/_/g, ' '));
    }
  }
  return new RegistryError('internal_error', 'internal registry error', { cause: e });
}
