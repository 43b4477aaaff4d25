import { credentialRecord } from './credentials.ts';
import { D, bool, json, same, sql, type SqlText } from './plan.ts';
import type { DeviceRecord, JsonObject } from './types.ts';

/**
 * Devices with their status, config version and credentials in ONE query: the devices chosen by
 * `devicesSubquery` (a `SELECT * FROM devices … [ORDER BY … LIMIT …]`), one row per credential
 * (or one row with null credential columns), in device order and each device's credentials
 * oldest first. `groupDevices` folds the rows into records.
 */
export function deviceSelect(devicesSubquery: string): SqlText {
  return sql`
    SELECT d.id, d.blocked, d.metadata, d.created_at,
           s.sessions, s.last_connected_at, s.last_disconnected_at, s.last_seen_at,
           s.last_error_code, s.last_error_at, c.version AS config_version, c.device_ack_at AS config_ack_at,
           g.project AS gcp_project, g.location AS gcp_location, g.registry AS gcp_registry, g.num_id AS gcp_num_id,
           cr.kid AS cred_kid, cr.fingerprint AS cred_fingerprint, cr.created_at AS cred_created_at, cr.expires_at AS cred_expires_at,
           cr.last_connect_at AS cred_last_connect_at, cr.last_message_at AS cred_last_message_at
    FROM (${same(devicesSubquery)}) d
    LEFT JOIN device_status s ON s.device_id = d.id
    LEFT JOIN device_config c ON c.device_id = d.id
    LEFT JOIN gcp_devices g ON g.device_id = d.id
    LEFT JOIN credentials cr ON cr.principal = d.id
    ORDER BY d.id, cr.created_at, cr.${D.insertionOrder}`;
}

export interface DeviceRow {
  id: string;
  blocked: unknown;
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
  cred_kid: string | null;
  cred_fingerprint: string | null;
  cred_created_at: number | null;
  cred_expires_at: number | null;
  cred_last_connect_at: number | null;
  cred_last_message_at: number | null;
}

/** Builds the docs/api.md device resources from `deviceSelect` rows (same order). */
export function groupDevices(rows: readonly DeviceRow[]): DeviceRecord[] {
  const out: DeviceRecord[] = [];
  let current: DeviceRecord | undefined;
  for (const row of rows) {
    if (current === undefined || current.id !== row.id) {
      current = toDeviceRecord(row);
      out.push(current);
    }
    if (row.cred_kid !== null) {
      current.credentials.push(
        credentialRecord({
          kid: row.cred_kid,
          fingerprint: row.cred_fingerprint as string,
          created_at: row.cred_created_at as number,
          expires_at: row.cred_expires_at,
          last_connect_at: row.cred_last_connect_at,
          last_message_at: row.cred_last_message_at,
        }),
      );
    }
  }
  return out;
}

function toDeviceRecord(row: DeviceRow): DeviceRecord {
  const record = deviceRecordOf(row);
  // a device imported from Cloud IoT Core shows its binding and its config's deviceAckTime; a native one neither
  if (row.gcp_num_id !== null) {
    record.gcp = { project: row.gcp_project as string, location: row.gcp_location as string, registry: row.gcp_registry as string, numId: row.gcp_num_id };
    record.config.deviceAckTime = row.config_ack_at;
  }
  return record;
}

function deviceRecordOf(row: DeviceRow): DeviceRecord {
  return {
    id: row.id,
    blocked: bool(row.blocked),
    metadata: json<JsonObject>(row.metadata),
    createdAt: row.created_at,
    credentials: [],
    status: {
      connected: (row.sessions ?? 0) > 0,
      lastConnectedAt: row.last_connected_at,
      lastDisconnectedAt: row.last_disconnected_at,
      lastSeenAt: row.last_seen_at,
      lastError:
        row.last_error_code !== null && row.last_error_at !== null ? { code: row.last_error_code, at: row.last_error_at } : null,
    },
    config: { version: row.config_version ?? 0 },
  };
}
