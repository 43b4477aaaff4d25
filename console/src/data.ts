import type { AuditEntry, DevicePage, DeviceQuery, DeviceRecord, EnrollmentTokenRecord, JsonObject, Page, Registry, TokenPageKey } from '@latchkey/provisioning/registry';

/**
 * Every registry read of the console, in one place. The registry is synchronous today and
 * becomes asynchronous later (several nodes, PostgreSQL): each call here is already awaited, so
 * that change touches this file only. Changes never go through here: they go through the HTTP
 * API (api.ts), which owns every rule of a write.
 */
export interface ConsoleData {
  devices(q: DeviceQuery): Promise<{ page: DevicePage; total: number; connected: number }>;
  device(id: string): Promise<DeviceDetail | null>;
  /** a page of tokens in creation order, after `after` (a page's `next`) */
  enrollmentTokens(q: { limit: number; after: TokenPageKey | null }): Promise<Page<EnrollmentTokenRecord>>;
  audit(q: { limit: number; target: string | null; before: number | null }): Promise<AuditEntry[]>;
  health(now: number): Promise<HealthFigures>;
}

export interface DeviceDetail {
  device: DeviceRecord;
  config: { version: number; config: JsonObject; updatedAt: number } | null;
  state: { state: unknown; reportedAt: number } | null;
  audit: AuditEntry[];
}

export interface HealthFigures {
  connected: number;
  devices: number;
  /** refused connects per minute and reason over the hour before `now` */
  failures: Array<{ minute: number; reason: string; count: number }>;
  topRefused: Array<{ principal: string | null; count: number }>;
  /** [since, until) of `failures`, minute-aligned */
  since: number;
  until: number;
}

export const DEVICE_AUDIT_ENTRIES = 20;
const HOUR_MS = 3_600_000;

export function consoleData(registry: Registry): ConsoleData {
  return {
    async devices(q) {
      const page = await registry.devices.query(q);
      const total = await registry.stats.countDevices();
      const connected = await registry.stats.countConnected();
      return { page, total, connected };
    },
    async device(id) {
      const device = await registry.devices.find(id);
      if (device === null) return null;
      const config = await registry.configState.getConfig(id);
      const state = await registry.configState.getState(id);
      const audit = await registry.audit.list({ limit: DEVICE_AUDIT_ENTRIES, target: id });
      return { device, config, state, audit };
    },
    async enrollmentTokens(q) {
      return await registry.enrollment.list(q);
    },
    async audit(q) {
      return await registry.audit.list(q);
    },
    async health(now) {
      const until = (Math.floor(now / 60_000) + 1) * 60_000;
      const since = until - HOUR_MS;
      const failures = await registry.stats.authFailuresByMinute(since, until);
      const topRefused = await registry.stats.topRefused(since, until, 10);
      const connected = await registry.stats.countConnected();
      const devices = await registry.stats.countDevices();
      return { connected, devices, failures, topRefused, since, until };
    },
  };
}
