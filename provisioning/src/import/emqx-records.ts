/**
 * EMQX's migration records (EMQX's `gcp_device` import, emqx-gcp-iot-migrate's gcp-export.py):
 * `{deviceid, project, location, registry, keys: [{key, key_type, expires_at}], blocked, config}`,
 * each device twice — once under its id, once under its numId, with the same keys. The pairs are
 * merged here: the numId record of a device is the one with the same binding, keys, blocked flag and
 * config. `config` is base64 data without a version; EMQX records carry no metadata.
 */
import { isGcpNumId } from '@latchkey/device-sdk/protocol';
import { RecordRefused, type ImportDevice, type ImportOptions, type ImportRefusal } from './import-set.ts';
import { isRecord, nameOf, readBinaryData, readBinding, readBlocked, readCredential, readCredentials, readDeviceId, readExpiresAtSeconds, type JsonRecord } from './record-fields.ts';

export function looksLikeEmqx(record: JsonRecord): boolean {
  return Object.hasOwn(record, 'deviceid');
}

interface Entry {
  index: number;
  record: JsonRecord;
  /** everything but `deviceid`, canonically: what the two records of one device share */
  content: string;
}

/** The fields the id and numId records of one device share, in a fixed order. */
function contentOf(r: JsonRecord): string {
  const keys = Array.isArray(r.keys) ? r.keys.map((k) => (isRecord(k) ? [k.key, k.key_type, k.expires_at] : k)) : r.keys;
  return JSON.stringify([r.project ?? '', r.location ?? '', r.registry ?? '', r.blocked ?? false, r.config ?? null, keys]);
}

/**
 * Every EMQX record, paired and read: the devices, and the refusals (a record with no partner, an
 * id or numId given twice for different content, a bad field).
 */
export function readEmqxRecords(records: readonly JsonRecord[], opts: ImportOptions): { devices: ImportDevice[]; refusals: ImportRefusal[] } {
  const devices: ImportDevice[] = [];
  const refusals: ImportRefusal[] = [];
  const byNum = new Map<string, Entry[]>();
  const byId = new Map<string, Entry[]>();
  records.forEach((record, index) => {
    const e: Entry = { index, record, content: contentOf(record) };
    const map = typeof record.deviceid === 'string' && isGcpNumId(record.deviceid) ? byNum : byId;
    const key = typeof record.deviceid === 'string' ? record.deviceid : `#${index}`;
    map.set(key, [...(map.get(key) ?? []), e]);
  });
  /** numId records by their content; a content shared by two numIds cannot be paired */
  const numByContent = new Map<string, string[]>();
  for (const [numId, entries] of byNum) {
    const content = entries[0]!.content;
    if (entries.some((e) => e.content !== content)) {
      refusals.push({ id: numId, code: 'duplicate_device', detail: 'this numId appears twice with different content' });
      continue;
    }
    numByContent.set(content, [...(numByContent.get(content) ?? []), numId]);
  }
  const paired = new Set<string>();
  for (const [id, entries] of byId) {
    const first = entries[0]!;
    const name = nameOf(first.record.deviceid, first.index);
    if (entries.some((e) => e.content !== first.content)) {
      refusals.push({ id: name, code: 'duplicate_device', detail: 'this device id appears twice with different content' });
      continue;
    }
    const partners = numByContent.get(first.content) ?? [];
    try {
      if (partners.length > 1) throw new RecordRefused('duplicate_device', 'two numId records have the same content as this device');
      const numId = partners[0];
      if (numId === undefined) throw new RecordRefused('invalid_num_id', 'no numId record has the same keys as this device');
      paired.add(numId);
      devices.push(readDevice(id, numId, first.record, opts));
    } catch (e) {
      if (!(e instanceof RecordRefused)) throw e;
      refusals.push({ id: name, code: e.code, detail: e.message });
    }
  }
  for (const [numId] of byNum) {
    if (!paired.has(numId) && !refusals.some((r) => r.id === numId)) {
      refusals.push({ id: numId, code: 'invalid_record', detail: 'a numId record with no device-id record of the same content' });
    }
  }
  return { devices, refusals };
}

function readDevice(deviceid: string, numId: string, r: JsonRecord, opts: ImportOptions): ImportDevice {
  const id = readDeviceId(deviceid);
  for (const part of ['project', 'location', 'registry'] as const) {
    if (r[part] !== undefined && typeof r[part] !== 'string') throw new RecordRefused('invalid_record', `${part} must be a string`);
  }
  const binding = readBinding(r, opts);
  if (!Array.isArray(r.keys)) throw new RecordRefused('invalid_record', 'keys must be an array');
  const credentials = readCredentials(r.keys, '{key, key_type, expires_at}', (k) => readCredential(k.key_type, k.key, readExpiresAtSeconds(k.expires_at)));
  return {
    id,
    numId,
    binding,
    blocked: readBlocked(r.blocked),
    metadata: null,
    credentials,
    config: r.config === undefined ? null : { version: null, data: readBinaryData(r.config, 'config') },
  };
}
