/**
 * `@latchkey/provisioning` — the provisioning HTTP API (http-api.md) and its pieces for the
 * composition root. The registry is exported separately as `@latchkey/provisioning/registry`.
 */
export { buildApp } from './http/app.ts';
export type { AppDeps } from './http/app.ts';
export { loadOrCreateAdminToken, ADMIN_TOKEN_FILE } from './http/admin-token.ts';
export { resolveHttpConfig, DEFAULT_HTTP_CONFIG, isProxyRange, PROXY_RANGE_NAMES } from './http/config.ts';
export type { HttpConfig } from './http/config.ts';
export { createHttpLogger, LOG_REDACT_PATHS } from './http/http-logger.ts';
export { API_ERROR_STATUS, API_ERROR_CODES, ApiError } from './http/api-error.ts';
export type { ApiErrorCode, Problem } from './http/api-error.ts';
export type { DeviceMessagingPort } from './http/messaging-port.ts';
