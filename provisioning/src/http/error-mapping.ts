import { isProtocolError, type IdErrorCode, type KeyErrorCode } from '@latchkey/device-sdk/protocol';
import { isRegistryError, type RegistryErrorCode } from '../registry/index.ts';
import { API_ERROR_TITLE, ApiError, isApiErrorCode, type ApiErrorCode, type ProblemItem } from './api-error.ts';

/** Every registry code has its HTTP code (exhaustive: a new registry code does not compile until placed). */
export const API_CODE_FOR_REGISTRY = {
  device_exists: 'device_exists',
  device_not_found: 'device_not_found',
  key_in_use: 'key_in_use',
  credential_limit: 'credential_limit',
  credential_not_found: 'credential_not_found',
  credential_in_use: 'credential_in_use',
  service_exists: 'service_exists',
  service_not_found: 'service_not_found',
  enrollment_token_invalid: 'enrollment_token_invalid',
  enrollment_token_not_found: 'enrollment_token_not_found',
  device_id_not_allowed: 'device_id_not_allowed',
  config_version_mismatch: 'config_version_mismatch',
  batch_rejected: 'batch_rejected',
  internal_error: 'internal_error',
} as const satisfies Record<RegistryErrorCode, ApiErrorCode>;

/** The protocol core's id and key codes reach HTTP unchanged. */
export const API_CODE_FOR_PROTOCOL = {
  invalid_device_id: 'invalid_device_id',
  invalid_service_name: 'invalid_service_name',
  invalid_public_key: 'invalid_public_key',
  private_key_rejected: 'private_key_rejected',
  unsupported_key_type: 'unsupported_key_type',
  unsupported_curve: 'unsupported_curve',
  key_too_small: 'key_too_small',
  certificate_expired: 'certificate_expired',
} as const satisfies Record<IdErrorCode | KeyErrorCode, ApiErrorCode>;

/** fastify's own errors, by their `code` (fastify lib/errors.js). */
const FASTIFY_CODES: Record<string, ApiErrorCode> = {
  FST_ERR_VALIDATION: 'validation_failed',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_NOT_FOUND: 'not_found',
  // raised by the router before any route runs (frameworkErrors); their messages echo the path
  FST_ERR_BAD_URL: 'malformed_url',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
};

/**
 * Maps anything thrown while handling a request to an ApiError. Registry and protocol errors
 * keep their precise code; fastify's request errors become 4xx codes; anything else is
 * `internal_error` with a fixed detail (the cause is kept for the server log only).
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (isRegistryError(e)) {
    const code = API_CODE_FOR_REGISTRY[e.code];
    if (code === 'internal_error') return new ApiError('internal_error', undefined, { cause: e });
    const items: ProblemItem[] | undefined =
      e.code === 'batch_rejected'
        ? e.items.map((i) => ({ index: i.index, code: API_CODE_FOR_REGISTRY[i.code], detail: API_ERROR_TITLE[API_CODE_FOR_REGISTRY[i.code]] }))
        : undefined;
    return new ApiError(code, code === 'batch_rejected' ? undefined : e.message, items === undefined ? undefined : { items });
  }
  if (isProtocolError(e)) {
    const code = (API_CODE_FOR_PROTOCOL as Record<string, ApiErrorCode>)[e.code];
    if (code !== undefined) return new ApiError(code, e.message);
    return new ApiError('internal_error', undefined, { cause: e });
  }
  const fastifyCode = (e as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === 'string') {
    const mapped = FASTIFY_CODES[fastifyCode];
    if (mapped === 'validation_failed' && fastifyCode === 'FST_ERR_VALIDATION') {
      return new ApiError('validation_failed', String((e as Error).message).slice(0, 500));
    }
    if (mapped !== undefined) return new ApiError(mapped);
  }
  // Any other client error fastify raises itself (bad URL, bad headers): a 400, never a 500.
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (isApiErrorCode(fastifyCode)) return new ApiError(fastifyCode);
    return new ApiError(status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : 'validation_failed');
  }
  return new ApiError('internal_error', undefined, { cause: e });
}
