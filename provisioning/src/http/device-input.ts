/**
 * Reading device input from request bodies: id, key, expiry and metadata, each by the rule's
 * one home (the protocol core for ids and keys). Used by single and batch creation alike, so a
 * batch item is judged exactly as a single device would be.
 */
import { assertDeviceId, parsePublicKey } from '@latchkey/device-sdk/protocol';
import type { JsonObject, NewDevice } from '../registry/index.ts';
import { ApiError } from './api-error.ts';

/** Serialized metadata larger than this is refused (it is returned with every device). */
export const MAX_METADATA_BYTES = 4096;

function isPlainObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Optional metadata: a JSON object of at most 4 KiB. */
export function readMetadata(v: unknown): JsonObject | undefined {
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) throw new ApiError('validation_failed', 'metadata must be a JSON object');
  if (Buffer.byteLength(JSON.stringify(v)) > MAX_METADATA_BYTES) {
    throw new ApiError('validation_failed', `metadata must serialize to at most ${MAX_METADATA_BYTES} bytes`);
  }
  return v;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
/** Numbers below this are epoch seconds (JWT style), from it epoch milliseconds. */
const SECONDS_BELOW = 1e11;
const EXPIRES_AT_FORMS = 'expiresAt must be an RFC 3339 date-time, epoch seconds or epoch ms';

/**
 * RFC 3339 §5.7 strictly: every field in range for its month and year (2027-02-30 and 24:00 are
 * refused, not rolled over as Date.parse does). Leap seconds (:60) are refused too: epoch
 * milliseconds cannot represent them. Returns epoch ms, or NaN.
 */
export function parseRfc3339(text: string): number {
  const m = RFC3339.exec(text);
  if (m === null) return Number.NaN;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate(); // day 0 of the next month
  const offsetOk = m[8] === undefined || (Number(m[8]) <= 23 && Number(m[9]) <= 59);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59 || !offsetOk) return Number.NaN;
  return Date.parse(text.replace(' ', 'T'));
}

/**
 * Optional explicit credential expiry, in the future; returned as epoch ms. Accepts an RFC 3339
 * date-time, epoch seconds or epoch milliseconds (docs/api.md §Conventions).
 */
export function readExpiresAt(v: unknown, now: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  let ms: number;
  if (typeof v === 'string') {
    ms = parseRfc3339(v);
    if (!Number.isSafeInteger(ms)) throw new ApiError('validation_failed', `${EXPIRES_AT_FORMS}; a calendar date that does not exist is refused`);
  } else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
    ms = v < SECONDS_BELOW ? v * 1000 : v;
  } else {
    throw new ApiError('validation_failed', EXPIRES_AT_FORMS);
  }
  if (ms <= now) throw new ApiError('validation_failed', 'expiresAt must be in the future');
  return ms;
}

/**
 * protocol.md §Keys, via the protocol core: precise codes for every refusal. `allowRsa` only for a
 * device with a Cloud IoT Core binding (protocol.md §RSA keys); everywhere else RSA stays
 * `unsupported_key_type`.
 */
export function readPublicKey(v: unknown, now: number, opts: { allowRsa?: boolean } = {}) {
  if (typeof v !== 'string' && !isPlainObject(v)) {
    throw new ApiError('validation_failed', 'publicKey must be a PEM string or a JWK object');
  }
  return parsePublicKey(v, { now, allowRsa: opts.allowRsa === true });
}

const DEVICE_FIELDS = new Set(['id', 'publicKey', 'expiresAt', 'metadata']);

/** One device of `POST /v1/devices` or of a batch. Throws ApiError / ProtocolError. */
export function readNewDevice(item: unknown, now: number): NewDevice {
  if (!isPlainObject(item)) throw new ApiError('validation_failed', 'a device must be a JSON object');
  for (const k of Object.keys(item)) {
    if (!DEVICE_FIELDS.has(k)) throw new ApiError('validation_failed', `unknown property ${JSON.stringify(k.slice(0, 64))}`);
  }
  if (typeof item.id !== 'string') throw new ApiError('validation_failed', 'id must be a string');
  const id = assertDeviceId(item.id);
  const key = readPublicKey(item.publicKey, now);
  const expiresAt = readExpiresAt(item.expiresAt, now);
  const metadata = readMetadata(item.metadata);
  const device: NewDevice = { id, key };
  if (expiresAt !== undefined) device.expiresAt = expiresAt;
  if (metadata !== undefined) device.metadata = metadata;
  return device;
}
