import type { CredentialStore } from './credentials.ts';
import type { DeviceRecord, JsonObject } from './types.ts';

/** One device with its status and config version (device_status/device_config rows are optional). */
export const DEVICE_SELECT = `
  SELECT d.id, d.blocked, d.metadata, d.created_at,
         s.sessions, s.last_connected_at, s.last_disconnected_at, s.last_seen_at,
         s.last_error_code, s.last_error_at, c.version AS config_version, c.device_ack_at AS config_ack_at,
         g.project AS gcp_project, g.location AS gcp_location, g.registry AS gcp_registry, g.num_id AS gcp_num_id
  FROM devices d
  LEFT JOIN device_status s ON s.device_id = d.id
  LEFT JOIN device_config c ON c.device_id = d.id
  LEFT JOIN gcp_devices g ON g.device_id = d.id`;

export interface DeviceRow {
  id: string;
  blocked: number;
  metadata: string;
  created_at: number;
  sessions: number | null;
  last_connected_at: number | null;
  last_disconnected_at: number | null;
  last_seen_at: number | null;
  last_error_code: string | null;
  last_error_at: number | null;
  config_version: number | null;
  config_ack_at: number | null;
  gcp_project: string | null;
  gcp_location: string | null;
  gcp_registry: string | null;
  gcp_num_id: string | null;
}

/** Builds the docs/api.md device resource from its row and credentials. */
export function toDeviceRecord(row: DeviceRow, credentials: CredentialStore): DeviceRecord {
  const record = deviceRecordOf(row, credentials);
  // a device imported from Cloud IoT Core shows its binding and its config's deviceAckTime; a native one neither
  if (row.gcp_num_id !== null) {
    record.gcp = { project: row.gcp_project as string, location: row.gcp_location as string, registry: row.gcp_registry as string, numId: row.gcp_num_id };
    record.config.deviceAckTime = row.config_ack_at;
  }
  return record;
}

function deviceRecordOf(row: DeviceRow, credentials: CredentialStore): DeviceRecord {
  return {
    id: row.id,
    blocked: row.blocked === 1,
    metadata: JSON.parse(row.metadata) as JsonObject,
    createdAt: row.created_at,
    credentials: credentials.list(row.id),
    status: {
      connected: (row.sessions ?? 0) > 0,
      lastConnectedAt: row.last_connected_at,
      lastDisconnectedAt: row.last_disconnected_at,
      lastSeenAt: row.last_seen_at,
      lastError:
        row.last_error_code !== null && row.last_error_at !== null
          ? { code: row.last_error_code, at: row.last_error_at }
          : null,
    },
    config: { version: row.config_version ?? 0 },
  };
}
