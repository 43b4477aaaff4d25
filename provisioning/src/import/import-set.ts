/**
 * What a Cloud IoT Core registry export becomes (protocol.md §Cloud IoT Core compatibility,
 * docs/migrating-from-cloud-iot-core.md §Import): one normalized set of devices, whatever format the
 * file used, or the list of every device refused with its reason. Built by pure functions
 * (`parseGcpImport`); the registry stores a set all-or-nothing.
 */
import { CodedError, type KeyErrorCode, type ParsedPublicKey } from '@latchkey/device-sdk/protocol';

/** The binding a device was imported with: what its Cloud IoT Core client id must name. */
export interface GcpBinding {
  readonly project: string;
  readonly location: string;
  readonly registry: string;
}

/** One credential as Cloud IoT Core held it. */
export interface ImportCredential {
  /** P-256 or RSA (2048..8192 bits) */
  readonly key: ParsedPublicKey;
  /** epoch ms; null for none (`expirationTime` 1970-01-01T00:00:00Z, or `expires_at` 0). A certificate's own notAfter is not applied. */
  readonly expiresAt: number | null;
}

/** One device, normalized. */
export interface ImportDevice {
  readonly id: string;
  /** Cloud IoT Core's numeric id, canonical decimal (an unsigned 64-bit integer) */
  readonly numId: string;
  readonly binding: GcpBinding;
  /** blocked devices are imported, blocked (EMQX's import skipped them) */
  readonly blocked: boolean;
  /** null when the format carries no metadata (EMQX records) */
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly credentials: readonly ImportCredential[];
  /** null: the record has no config. `version` null: the format carries none (EMQX records; stored as 1). */
  readonly config: { readonly version: number | null; readonly data: Buffer } | null;
}

/**
 * Why a device was refused. The key codes are the protocol core's (`unsupported_key_type`,
 * `key_too_small`, …); the others are the import's own. Stable: clients branch on them.
 */
export const IMPORT_REFUSAL_CODES = [
  'invalid_record', // not an object, a field of the wrong type, or an EMQX record with no partner
  'invalid_device_id', // outside latchkey's alphabet (protocol.md §Device ids)
  'invalid_num_id', // missing, not an unsigned 64-bit integer, or disagreeing with the resource name
  'invalid_binding', // project, location or registry missing or malformed
  'binding_conflict', // the record's project, location or registry differs from --project/--location/--registry
  'credential_missing', // no credential: nothing could authenticate the device (gateway-bound devices)
  'credential_limit', // more than 3 credentials
  'key_format_mismatch', // the key is not what its format says (RSA_PEM holding an EC key, ES256_X509_PEM holding a bare key, …)
  'invalid_expiration', // an expiry that is not an RFC 3339 date-time or epoch seconds
  'invalid_config', // a version that is not a positive integer, data that is not base64, more than 64 KiB
  'invalid_metadata', // not a map of strings, or over 4 KiB serialized
  'gateway_not_supported', // a Cloud IoT Core gateway: not supported yet
  'duplicate_device', // the same id or numId for two different devices in the file
  'key_in_use', // one key on two devices (in the file, or already registered elsewhere)
  'device_exists', // registered already, differently (an import never overwrites)
  'num_id_in_use', // the numId belongs to another device already registered
] as const;

export type ImportRefusalCode = (typeof IMPORT_REFUSAL_CODES)[number] | Exclude<KeyErrorCode, 'certificate_expired'>;

/** One refused device: `id` is its device id as the file gives it (at most 64 characters), or `#index` when it has none. */
export interface ImportRefusal {
  readonly id: string;
  readonly code: ImportRefusalCode;
  readonly detail: string;
}

/** A parsed file: every device that parsed, and every one that did not. */
export interface ParsedImport {
  readonly format: 'gcloud' | 'emqx';
  readonly devices: readonly ImportDevice[];
  readonly refusals: readonly ImportRefusal[];
}

/** Options of an import: the binding for records that lack one, and the clock for certificate checks. */
export interface ImportOptions {
  readonly project?: string;
  readonly location?: string;
  readonly registry?: string;
}

/** A refusal of one record, thrown inside a record's parser and collected as an {@link ImportRefusal}. */
export class RecordRefused extends CodedError<ImportRefusalCode> {
  override readonly name = 'RecordRefused';
}

/** An import holds at most this many devices (after EMQX's id/numId pairs are merged). */
export const MAX_IMPORT_DEVICES = 10_000;
/** Cloud IoT Core's limit on a device's config data. */
export const MAX_CONFIG_BYTES = 64 * 1024;
