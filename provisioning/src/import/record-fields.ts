/**
 * The fields both export formats share, each read by one function with the gotchas of
 * docs/migrating-from-cloud-iot-core.md §Import: int64 values as strings, `1970-01-01T00:00:00Z` (or 0)
 * for "no expiry", RFC 3339 with nanoseconds, base64 in either alphabet, the four key formats.
 */
import {
  MAX_CREDENTIALS,
  isDeviceId,
  isGcpLocation,
  isGcpNumId,
  isGcpProject,
  isGcpRegistry,
  isProtocolError,
  parsePublicKey,
  DEVICE_ID_PATTERN,
  type KeyErrorCode,
} from '@latchkey/device-sdk/protocol';
import { MAX_METADATA_BYTES, parseRfc3339 } from '../http/device-input.ts';
import { MAX_CONFIG_BYTES, RecordRefused, type GcpBinding, type ImportCredential, type ImportOptions } from './import-set.ts';

export type JsonRecord = Record<string, unknown>;

export function isRecord(v: unknown): v is JsonRecord {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** How a refusal names a record: its id as given (at most 64 characters), else `#index`. */
export function nameOf(id: unknown, index: number): string {
  return typeof id === 'string' && id.length > 0 ? id.slice(0, 64) : `#${index}`;
}

export function readDeviceId(v: unknown): string {
  if (typeof v !== 'string') throw new RecordRefused('invalid_record', 'the device id is missing or not a string');
  if (!isDeviceId(v)) throw new RecordRefused('invalid_device_id', `the device id is outside latchkey's alphabet ${DEVICE_ID_PATTERN.source}`);
  return v;
}

/** An int64 as the exports write it: a string of digits (or a JSON number small enough to be exact). */
function int64Text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  return null;
}

export function readNumId(v: unknown): string {
  const text = int64Text(v);
  if (text === null || !isGcpNumId(text)) throw new RecordRefused('invalid_num_id', 'numId must be an unsigned 64-bit integer (a string of digits)');
  return text;
}

/** A positive config version (an int64 string or an exact number). */
export function readVersion(v: unknown): number {
  const text = int64Text(v);
  const n = text !== null && /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new RecordRefused('invalid_config', 'config version must be a positive integer');
  return n;
}

const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Config data in either base64 alphabet (RFC 4648 §4 or §5; protobuf's JSON mapping writes the first
 * and reads both), padded or not, in canonical form (no stray bits, no mixed alphabets).
 */
export function readBinaryData(v: unknown, what: string): Buffer {
  if (typeof v !== 'string') throw new RecordRefused('invalid_config', `${what} must be a base64 string`);
  const alphabet = STANDARD.test(v) ? 'base64' : URL_SAFE.test(v) ? 'base64url' : null;
  const body = v.replace(/=+$/, '');
  const padded = body.length !== v.length;
  if (alphabet === null || body.length % 4 === 1 || (padded && v.length % 4 !== 0)) throw new RecordRefused('invalid_config', `${what} is not base64`);
  const data = Buffer.from(body, alphabet);
  if (data.toString(alphabet).replace(/=+$/, '') !== body) throw new RecordRefused('invalid_config', `${what} is not canonical base64`);
  if (data.length > MAX_CONFIG_BYTES) throw new RecordRefused('invalid_config', `${what} is larger than ${MAX_CONFIG_BYTES} bytes`);
  return data;
}

/** The four key formats of Cloud IoT Core and what each must hold. */
const KEY_FORMATS: Readonly<Record<string, { keyType: 'rsa' | 'ec'; x509: boolean }>> = {
  RSA_PEM: { keyType: 'rsa', x509: false },
  RSA_X509_PEM: { keyType: 'rsa', x509: true },
  ES256_PEM: { keyType: 'ec', x509: false },
  ES256_X509_PEM: { keyType: 'ec', x509: true },
};

/**
 * One credential: the key parsed by the protocol core (RSA allowed, an expired certificate kept: the
 * import keeps credentials as Cloud IoT Core held them) and checked against its format.
 */
export function readCredential(format: unknown, key: unknown, expiresAt: number | null): ImportCredential {
  const expected = typeof format === 'string' && Object.hasOwn(KEY_FORMATS, format) ? KEY_FORMATS[format] : undefined;
  if (expected === undefined) throw new RecordRefused('key_format_mismatch', 'a key format must be RSA_PEM, RSA_X509_PEM, ES256_PEM or ES256_X509_PEM');
  if (typeof key !== 'string' || !key.trim().startsWith('-----BEGIN ')) throw new RecordRefused('key_format_mismatch', `a ${String(format)} key must be a PEM string`);
  let parsed;
  try {
    parsed = parsePublicKey(key, { allowRsa: true, expiredCertificate: 'keep' });
  } catch (e) {
    if (isProtocolError(e)) throw new RecordRefused(e.code as Exclude<KeyErrorCode, 'certificate_expired'>, e.message);
    throw e;
  }
  if (parsed.keyType !== expected.keyType || (parsed.format === 'x509') !== expected.x509) {
    throw new RecordRefused('key_format_mismatch', `the key is not a ${String(format)} key`);
  }
  return { key: parsed, expiresAt };
}

/**
 * A device's credentials: a list (absent: none) of 1 to 3 entries, each read by `read` (which gets a
 * record, or refuses `what` for anything else).
 */
export function readCredentials(list: unknown, what: string, read: (entry: JsonRecord) => ImportCredential): ImportCredential[] {
  if (list !== undefined && !Array.isArray(list)) throw new RecordRefused('invalid_record', 'the credentials must be an array');
  const entries = (list ?? []) as unknown[];
  if (entries.length === 0) throw new RecordRefused('credential_missing', 'the device has no credential (gateway-bound devices are not supported)');
  if (entries.length > MAX_CREDENTIALS) throw new RecordRefused('credential_limit', `at most ${MAX_CREDENTIALS} credentials per device`);
  return entries.map((e) => {
    if (!isRecord(e)) throw new RecordRefused('invalid_record', `a credential must be ${what}`);
    return read(e);
  });
}

/** `blocked`: true or false (absent: false, as protobuf's JSON leaves a false out). */
export function readBlocked(v: unknown): boolean {
  if (v !== undefined && typeof v !== 'boolean') throw new RecordRefused('invalid_record', 'blocked must be true or false');
  return v === true;
}

/**
 * gcloud's `expirationTime`: RFC 3339 (nanoseconds allowed); the epoch itself means no expiry. Kept to
 * the whole second below it, as token times are (and as EMQX's `expires_at` seconds carry it).
 */
export function readExpirationTime(v: unknown): number | null {
  if (v === undefined) return null;
  const ms = typeof v === 'string' ? parseRfc3339(v) : Number.NaN;
  if (!Number.isSafeInteger(ms)) throw new RecordRefused('invalid_expiration', 'expirationTime must be an RFC 3339 date-time');
  return ms === 0 ? null : Math.floor(ms / 1000) * 1000;
}

/** EMQX's `expires_at`: epoch seconds, 0 for no expiry. */
export function readExpiresAtSeconds(v: unknown): number | null {
  if (v === undefined || v === 0) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 8.64e12) throw new RecordRefused('invalid_expiration', 'expires_at must be epoch seconds (0 for none)');
  return v * 1000;
}

/** Cloud IoT Core metadata: a map of strings, within latchkey's metadata limit. */
export function readMetadataMap(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (!isRecord(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new RecordRefused('invalid_metadata', 'metadata must be a map of strings');
  if (Buffer.byteLength(JSON.stringify(v)) > MAX_METADATA_BYTES) throw new RecordRefused('invalid_metadata', `metadata must serialize to at most ${MAX_METADATA_BYTES} bytes`);
  return { ...(v as Record<string, string>) };
}

/**
 * The binding from the record's own parts (empty or absent: unknown) and the import's options: an
 * option fills in a part the record lacks; one that disagrees with the record is `binding_conflict`.
 */
export function readBinding(parts: { project?: unknown; location?: unknown; registry?: unknown }, opts: ImportOptions): GcpBinding {
  const pick = (name: keyof GcpBinding, valid: (s: unknown) => s is string): string => {
    const own = parts[name] === '' ? undefined : parts[name];
    const given = opts[name];
    if (own !== undefined && given !== undefined && own !== given) throw new RecordRefused('binding_conflict', `the record's ${name} differs from --${name}`);
    const value = own ?? given;
    if (value === undefined) throw new RecordRefused('invalid_binding', `the ${name} is unknown: give --${name}`);
    if (!valid(value)) throw new RecordRefused('invalid_binding', `the ${name} is not a valid Cloud IoT Core ${name}`);
    return value;
  };
  return { project: pick('project', isGcpProject), location: pick('location', isGcpLocation), registry: pick('registry', isGcpRegistry) };
}
