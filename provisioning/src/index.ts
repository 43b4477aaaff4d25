/**
 * `@latchkey/provisioning` — the provisioning HTTP API (docs/api.md) and its pieces for the
 * composition root. The registry is exported separately as `@latchkey/provisioning/registry`.
 */
export { buildApp } from './http/app.ts';
export type { AppDeps } from './http/app.ts';
export { loadOrCreateAdminToken, ADMIN_TOKEN_FILE } from './http/admin-token.ts';
export { AdminGate, adminGateOf } from './http/admin-auth.ts';
export type { AdminCheck } from './http/admin-auth.ts';
export { checkHttpConfig, resolveHttpConfig, isAdminToken, ADMIN_TOKEN_RULE, DEFAULT_HTTP_CONFIG } from './http/config.ts';
export type { HttpConfig, HttpSettings, HttpConfigProblem } from './http/config.ts';
export { createHttpLogger, LOG_REDACT_PATHS } from './http/http-logger.ts';
export { API_ERROR_STATUS, API_ERROR_CODES, ApiError, isApiErrorCode } from './http/api-error.ts';
export type { ApiErrorCode, Problem } from './http/api-error.ts';
export { toApiError } from './http/error-mapping.ts';
export type { DeviceMessagingPort } from './http/messaging-port.ts';
export { FleetEvents, observeRegistry, FLEET_EVENT_TYPES } from './events/fleet-events.ts';
export type { FleetEvent, FleetEventSource, FleetEventType, BrokerFacingRegistry, LiveSessionEvent, RefusalEvent } from './events/fleet-events.ts';
export { EventStreams, EventStream, sseFrame, DEFAULT_EVENT_STREAM_LIMITS } from './events/event-stream.ts';
export type { EventStreamLimits } from './events/event-stream.ts';
export { parseFleetStreamQuery, runFleetStream, MAX_STREAM_DEVICES, MAX_TELEMETRY_BYTES, MAX_TELEMETRY_RATE } from './events/fleet-stream.ts';
export type { FleetStreamQuery, FleetStreamDeps, StreamEventType } from './events/fleet-stream.ts';
