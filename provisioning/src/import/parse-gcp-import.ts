/**
 * A Cloud IoT Core registry export, in either format, to one normalized set (docs/migrating-from-cloud-iot-core.md
 * §Import). Pure: no registry, no clock. Each record is read on its own, then the set is checked as a
 * whole (one id, numId and key per device). Every refused device is named with its reason; the file
 * itself being unreadable as an export is an `import_malformed` problem.
 */
import { ApiError } from '../http/api-error.ts';
import { readEmqxRecords, looksLikeEmqx } from './emqx-records.ts';
import { looksLikeGcloud, readGcloudDevice } from './gcloud-export.ts';
import { MAX_IMPORT_DEVICES, RecordRefused, type ImportDevice, type ImportOptions, type ImportRefusal, type ParsedImport } from './import-set.ts';
import { isRecord, nameOf, type JsonRecord } from './record-fields.ts';

/**
 * Reads an export: gcloud JSON (one Device or an array of them) or EMQX migration records (an array).
 *
 * @example
 * ```ts
 * const { devices, refusals } = parseGcpImport(JSON.parse(text), { project: 'acme-iot' });
 * ```
 */
export function parseGcpImport(input: unknown, opts: ImportOptions = {}): ParsedImport {
  const items: unknown[] = Array.isArray(input) ? input : isRecord(input) ? [input] : [];
  if (!Array.isArray(input) && !isRecord(input)) throw new ApiError('import_malformed', 'an export is a JSON object (one device) or an array');
  if (items.length > 2 * MAX_IMPORT_DEVICES) throw new ApiError('payload_too_large', `an import holds at most ${MAX_IMPORT_DEVICES} devices`);
  const refusals: ImportRefusal[] = [];
  const records: { index: number; record: JsonRecord }[] = [];
  items.forEach((item, index) => {
    if (isRecord(item) && (looksLikeGcloud(item) || looksLikeEmqx(item))) records.push({ index, record: item });
    else refusals.push({ id: nameOf(isRecord(item) ? item.id : undefined, index), code: 'invalid_record', detail: 'neither a gcloud Device resource nor an EMQX record' });
  });
  const emqx = records.filter((r) => looksLikeEmqx(r.record)).length;
  if (emqx > 0 && emqx < records.length) throw new ApiError('import_malformed', 'the file mixes gcloud devices and EMQX records');
  const format = emqx > 0 ? 'emqx' : 'gcloud';
  let devices: ImportDevice[];
  if (format === 'emqx') {
    const read = readEmqxRecords(records.map((r) => r.record), opts);
    devices = read.devices;
    refusals.push(...read.refusals);
  } else {
    devices = readGcloud(records, opts, refusals);
  }
  if (devices.length > MAX_IMPORT_DEVICES) throw new ApiError('payload_too_large', `an import holds at most ${MAX_IMPORT_DEVICES} devices`);
  return checkSet(format, devices, refusals);
}

function readGcloud(records: { index: number; record: JsonRecord }[], opts: ImportOptions, refusals: ImportRefusal[]): ImportDevice[] {
  const devices: ImportDevice[] = [];
  const seen = new Map<string, string>(); // id → the record's JSON, so an identical repeat is merged
  for (const { index, record } of records) {
    const name = nameOf(record.id, index);
    const json = JSON.stringify(record);
    if (typeof record.id === 'string' && seen.has(record.id)) {
      if (seen.get(record.id) !== json) refusals.push({ id: name, code: 'duplicate_device', detail: 'this device id appears twice with different content' });
      continue;
    }
    if (typeof record.id === 'string') seen.set(record.id, json);
    try {
      devices.push(readGcloudDevice(record, opts));
    } catch (e) {
      if (!(e instanceof RecordRefused)) throw e;
      refusals.push({ id: name, code: e.code, detail: e.message });
    }
  }
  // a device refused for a duplicate is not imported in its first form either
  const duplicated = new Set(refusals.filter((r) => r.code === 'duplicate_device').map((r) => r.id));
  return devices.filter((d) => !duplicated.has(d.id));
}

/**
 * The set as a whole: a numId names one device, and a key belongs to one device (protocol.md §Keys:
 * `key_in_use`, here within the file; the registry checks against what it holds).
 */
function checkSet(format: ParsedImport['format'], devices: ImportDevice[], refusals: ImportRefusal[]): ParsedImport {
  const refused = new Map<string, ImportRefusal>();
  const refuse = (d: ImportDevice, code: ImportRefusal['code'], detail: string) => {
    if (!refused.has(d.id)) refused.set(d.id, { id: d.id, code, detail });
  };
  const byNumId = new Map<string, ImportDevice>();
  const byKey = new Map<string, ImportDevice>();
  for (const d of devices) {
    const other = byNumId.get(d.numId);
    if (other !== undefined) {
      refuse(other, 'duplicate_device', `numId ${d.numId} is also the numId of ${d.id}`);
      refuse(d, 'duplicate_device', `numId ${d.numId} is also the numId of ${other.id}`);
    } else {
      byNumId.set(d.numId, d);
    }
    const own = new Set<string>();
    for (const c of d.credentials) {
      if (own.has(c.key.fingerprint)) refuse(d, 'key_in_use', 'the same key twice');
      own.add(c.key.fingerprint);
      const holder = byKey.get(c.key.fingerprint);
      if (holder !== undefined && holder !== d) {
        refuse(holder, 'key_in_use', `the key with fingerprint ${c.key.fingerprint} is also a key of ${d.id}`);
        refuse(d, 'key_in_use', `the key with fingerprint ${c.key.fingerprint} is also a key of ${holder.id}`);
      } else {
        byKey.set(c.key.fingerprint, d);
      }
    }
  }
  return { format, devices: devices.filter((d) => !refused.has(d.id)), refusals: [...refusals, ...refused.values()] };
}
