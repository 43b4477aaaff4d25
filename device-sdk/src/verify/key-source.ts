import type { JsonWebKey, KeyObject } from 'node:crypto';
import { parsePublicKey, type MessageCredential } from '../protocol/index.ts';

/**
 * One credential of a device as a consumer needs it to verify signed messages: its key and when it
 * was valid (api.md `GET /v1/devices/{id}/keys`). Times are epoch ms; null when open-ended.
 */
export interface DeviceKeyRecord {
  kid: string;
  /** SPKI PEM, a P-256 JWK, or a public KeyObject */
  publicKey: string | JsonWebKey | KeyObject;
  createdAt: number | null;
  /** when the credential was removed from the device; null while it is registered */
  removedAt: number | null;
  expiresAt: number | null;
}

/**
 * Where a consumer gets a device's key history: the registry over HTTP (`RegistryKeySource`), or
 * anything else that knows it. `fetchedSince` (epoch ms) asks for a history no older than that: the
 * verifier asks once more so when a message names a `kid` the history does not know, or no key of
 * it verifies, and the history predates the message (the device may have rotated its key since).
 */
export interface DeviceKeySource {
  /** Every credential the device has had, or null when the device is unknown. */
  keysOf(deviceId: string, o?: { fetchedSince?: number }): Promise<readonly DeviceKeyRecord[] | null>;
}

/** Credentials built from records, once per record object. */
const imported = new WeakMap<DeviceKeyRecord, MessageCredential>();

/**
 * A record as the protocol core's rules take it: the key parsed and validated as any registered key
 * is (protocol.md §Keys; a P-256 point on the curve), once per record object.
 */
export function credentialOf(record: DeviceKeyRecord): MessageCredential {
  let c = imported.get(record);
  if (c === undefined) {
    const key = isKeyObject(record.publicKey) ? parsePublicKey(record.publicKey.export({ type: 'spki', format: 'pem' })).key : parsePublicKey(record.publicKey).key;
    c = { kid: record.kid, key, createdAt: record.createdAt, removedAt: record.removedAt, expiresAt: record.expiresAt };
    imported.set(record, c);
  }
  return c;
}

function isKeyObject(k: unknown): k is KeyObject {
  return typeof k === 'object' && k !== null && typeof (k as KeyObject).export === 'function' && (k as KeyObject).type === 'public';
}
