/**
 * gcloud's JSON (`gcloud iot devices describe --format=json`, or `list` with a full field mask): a
 * Cloud IoT Core `Device` resource as protobuf's JSON mapping writes it — int64 as strings, false
 * and empty fields left out, `name` = `projects/{p}/locations/{l}/registries/{r}/devices/{numId}`.
 */
import { parseGcpClientId } from '@latchkey/device-sdk/protocol';
import { RecordRefused, type ImportDevice, type ImportOptions } from './import-set.ts';
import {
  isRecord,
  readBlocked,
  readBinaryData,
  readBinding,
  readCredential,
  readCredentials,
  readDeviceId,
  readExpirationTime,
  readMetadataMap,
  readNumId,
  readVersion,
  type JsonRecord,
} from './record-fields.ts';

/** A gcloud export holds Device resources: an `id` and `credentials` (or a `name`), never EMQX's `deviceid`. */
export function looksLikeGcloud(record: JsonRecord): boolean {
  return !Object.hasOwn(record, 'deviceid') && (Object.hasOwn(record, 'id') || Object.hasOwn(record, 'name'));
}

/** One Device resource; throws {@link RecordRefused}. */
export function readGcloudDevice(record: JsonRecord, opts: ImportOptions): ImportDevice {
  const id = readDeviceId(record.id);
  const path = record.name === undefined ? null : parseGcpClientId(record.name);
  if (record.name !== undefined && path === null) throw new RecordRefused('invalid_binding', 'name is not a Cloud IoT Core device resource name');
  const fromName = path?.device.kind === 'numId' ? path.device.numId : undefined;
  if (path?.device.kind === 'id' && path.device.deviceId !== id) throw new RecordRefused('invalid_record', 'name names another device');
  const numId = readNumId(record.numId ?? fromName);
  if (fromName !== undefined && fromName !== numId) throw new RecordRefused('invalid_num_id', 'numId differs from the one its name ends in');
  const binding = readBinding(path ?? {}, opts);
  if (isRecord(record.gatewayConfig) && record.gatewayConfig.gatewayType === 'GATEWAY') {
    throw new RecordRefused('gateway_not_supported', 'Cloud IoT Core gateways are not supported yet');
  }
  const credentials = readCredentials(record.credentials, '{publicKey: {format, key}, expirationTime}', (c) => {
    if (!isRecord(c.publicKey)) throw new RecordRefused('invalid_record', 'a credential must hold a publicKey {format, key}');
    return readCredential(c.publicKey.format, c.publicKey.key, readExpirationTime(c.expirationTime));
  });
  return {
    id,
    numId,
    binding,
    blocked: readBlocked(record.blocked),
    metadata: readMetadataMap(record.metadata),
    credentials,
    config: readConfig(record.config),
  };
}

/** `DeviceConfig`: `version` (int64) and optional `binaryData`; the times Cloud IoT Core kept are not imported. */
function readConfig(v: unknown): ImportDevice['config'] {
  if (v === undefined) return null;
  if (!isRecord(v)) throw new RecordRefused('invalid_config', 'config must be an object');
  return { version: readVersion(v.version), data: v.binaryData === undefined ? Buffer.alloc(0) : readBinaryData(v.binaryData, 'config.binaryData') };
}
