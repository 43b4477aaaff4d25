/** `@latchkey/provisioning/registry` — the device registry, on SQLite or PostgreSQL. */
export { Registry, openRegistry } from './registry.ts';
export type { RegistryOptions } from './registry.ts';
export { RegistryError, isRegistryError, REGISTRY_ERROR_CODES } from './errors.ts';
export type { RegistryErrorCode, BatchItemError } from './errors.ts';
export { MAX_BATCH } from './devices.ts';
export type { GcpImportResult } from './gcp-store.ts';
export { parseTokenPageKey } from './enrollment.ts';
export type { TokenPageKey } from './enrollment.ts';
export { DEVICE_STATUS_FILTERS, RECENT_ERROR_MS } from './device-query.ts';
export type { DeviceQuery, DevicePage, DeviceStatusFilter } from './device-query.ts';
export type { AuthFailureCount, DeviceStatusSnapshot, FleetStats } from './fleet-stats.ts';
export { MIGRATIONS, migrate } from './migrations.ts';
export { POSTGRES_MIGRATIONS } from './migrations-postgres.ts';
export { checkDatabaseUrl, redactDatabaseUrl, redactPassword } from './database-url.ts';
export { startRetention, checkRetentionPolicy, DEFAULT_RETENTION_POLICY, PRUNE_BATCH, OUTBOX_RETENTION_MS } from './retention.ts';
export type { PruneCounts, RetentionPolicy, RetentionTask } from './retention.ts';
export type { Migration } from './migrations.ts';
export type { FeedHealth, FeedState } from './change-feed.ts';
export type { PostgresFeedTimings } from './postgres-feed.ts';
export type { SessionEvent } from './status.ts';
export type {
  AuditEntry,
  AuthFailure,
  CredentialKey,
  CredentialRecord,
  DeviceRecord,
  DeviceStatus,
  EnrollmentTokenRecord,
  GcpBindingRecord,
  JsonObject,
  NewDevice,
  NewEnrollmentToken,
  NewService,
  Page,
  PrincipalRecord,
  RegistryChange,
  ServiceAcl,
  ServiceRecord,
} from './types.ts';
