/**
 * The HTTP error contract (errors.md §HTTP API): every refusal is RFC 9457 problem+json
 * `{type, title, status, detail, code}` with a stable `code`. One exhaustive table maps each
 * code to its status, so a new code does not compile until it has one.
 */
import { CodedError } from '@latchkey/device-sdk/protocol';

export const API_ERROR_STATUS = {
  // request shape
  validation_failed: 400,
  malformed_json: 400,
  json_too_deep: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  not_found: 404,
  malformed_request: 400,
  malformed_url: 400,
  uri_too_long: 414,
  headers_too_large: 431,
  request_timeout: 408,
  // identifiers and keys (protocol.md §Device ids, §Keys)
  invalid_device_id: 400,
  invalid_service_name: 400,
  invalid_public_key: 400,
  private_key_rejected: 400,
  unsupported_key_type: 400,
  unsupported_curve: 400,
  key_too_small: 400,
  certificate_expired: 400,
  invalid_topic_filter: 400,
  invalid_id_pattern: 400,
  batch_rejected: 400,
  import_malformed: 400,
  import_rejected: 400,
  // authentication
  unauthorized: 401,
  enrollment_token_invalid: 401,
  proof_invalid: 400,
  device_id_not_allowed: 403,
  rate_limited: 429,
  // registry state
  device_exists: 409,
  device_not_found: 404,
  key_in_use: 409,
  credential_limit: 409,
  credential_not_found: 404,
  credential_in_use: 409,
  service_exists: 409,
  service_not_found: 404,
  enrollment_token_not_found: 404,
  config_version_mismatch: 409,
  // devices over MQTT
  device_offline: 409,
  command_timeout: 504,
  // the service itself
  not_ready: 503,
  internal_error: 500,
} as const satisfies Record<string, 400 | 401 | 403 | 404 | 408 | 409 | 413 | 414 | 415 | 429 | 431 | 500 | 503 | 504>;

export type ApiErrorCode = keyof typeof API_ERROR_STATUS;

export const API_ERROR_CODES = Object.keys(API_ERROR_STATUS) as ApiErrorCode[];

/** Is `code` one of the API's codes (for instance the `code` of a problem document)? */
export function isApiErrorCode(code: unknown): code is ApiErrorCode {
  return typeof code === 'string' && Object.hasOwn(API_ERROR_STATUS, code);
}

/** Titles: one short, fixed, human sentence per code (the `title` member of RFC 9457). */
export const API_ERROR_TITLE: Record<ApiErrorCode, string> = {
  validation_failed: 'The request does not match the schema',
  malformed_json: 'The body is not valid JSON',
  json_too_deep: 'The JSON body is nested too deeply',
  payload_too_large: 'The body is larger than the limit',
  unsupported_media_type: 'The content type is not supported',
  not_found: 'No such route',
  malformed_request: 'The request is not valid HTTP',
  malformed_url: 'The URL is not valid percent-encoding',
  uri_too_long: 'A path segment is too long',
  headers_too_large: 'The request line and headers are too large',
  request_timeout: 'The request did not arrive in time',
  invalid_device_id: 'Invalid device id',
  invalid_service_name: 'Invalid service-account name',
  invalid_public_key: 'Invalid public key',
  private_key_rejected: 'This is a private key; send only the public key',
  unsupported_key_type: 'Only EC P-256 keys are supported',
  unsupported_curve: 'Only the P-256 curve is supported',
  key_too_small: 'RSA keys must have at least 2048 bits',
  certificate_expired: 'The certificate has expired',
  invalid_topic_filter: 'Invalid topic filter',
  invalid_id_pattern: 'Invalid device id pattern',
  batch_rejected: 'Some devices of the batch were refused; nothing was stored',
  import_malformed: 'The file is not a Cloud IoT Core export',
  import_rejected: 'Some devices of the import were refused; nothing was stored',
  unauthorized: 'Missing or invalid admin token',
  enrollment_token_invalid: 'Missing, unknown, expired or used-up enrollment token',
  proof_invalid: 'The proof of possession does not verify',
  device_id_not_allowed: 'The enrollment token does not allow this device id',
  rate_limited: 'Too many failed attempts; try again later',
  device_exists: 'A device with this id exists',
  device_not_found: 'No such device',
  key_in_use: 'This public key is already registered',
  credential_limit: 'The device already has 3 credentials',
  credential_not_found: 'No such credential',
  credential_in_use: 'This credential verified a connect recently',
  service_exists: 'A service account with this name exists',
  service_not_found: 'No such service account',
  enrollment_token_not_found: 'No such enrollment token',
  config_version_mismatch: 'The config version is not the expected one',
  device_offline: 'The device is not connected',
  command_timeout: 'The device did not reply in time',
  not_ready: 'Not ready',
  internal_error: 'Internal error',
};

/** One refused item of a batch. */
export interface ProblemItem {
  index: number;
  code: ApiErrorCode;
  detail: string;
}

/**
 * An HTTP refusal with a stable code. `detail` must be safe to show: never a token or a key.
 *
 * @example
 * ```ts
 * throw new ApiError('device_offline', 'device thermo-1 has no live session');
 * ```
 */
export class ApiError extends CodedError<ApiErrorCode> {
  override readonly name = 'ApiError';
  readonly status: number;
  /** batch_rejected: every refused item, by index */
  readonly items: readonly ProblemItem[] | undefined;
  /** import_rejected: every refused device, by id */
  readonly refused: readonly RefusedDevice[] | undefined;
  constructor(code: ApiErrorCode, detail?: string, options?: { items?: readonly ProblemItem[]; refused?: readonly RefusedDevice[]; cause?: unknown }) {
    super(code, detail ?? API_ERROR_TITLE[code], options);
    this.status = API_ERROR_STATUS[code];
    this.items = options?.items;
    this.refused = options?.refused;
  }
}

/** One refused device of an import (docs/migrating-from-cloud-iot-core.md §Refusals). */
export interface RefusedDevice {
  id: string;
  code: string;
  detail: string;
}

/** RFC 9457 body. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ApiErrorCode;
  errors?: readonly ProblemItem[];
  refused?: readonly RefusedDevice[];
}

export const PROBLEM_TYPE_PREFIX = 'urn:latchkey:problem:';

export function problemOf(err: ApiError): Problem {
  const body: Problem = {
    type: PROBLEM_TYPE_PREFIX + err.code,
    title: API_ERROR_TITLE[err.code],
    status: err.status,
    detail: err.message,
    code: err.code,
  };
  if (err.items !== undefined) body.errors = err.items;
  if (err.refused !== undefined) body.refused = err.refused;
  return body;
}
