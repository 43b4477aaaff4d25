import { createPublicKey, type KeyObject } from 'node:crypto';
import { withSlash } from './clock-offset.ts';
import { DeviceClientError } from '../errors.ts';
import { postJson } from './http-json.ts';
import { loadPrivateKeyPem, publicKeyToPem } from '../keys/keys.ts';
import { mintEnrollProof, type Es256Signer } from '../token/mint-token.ts';
import { deviceIdOption } from '../client/connect-options.ts';
import type { Clock } from '../protocol/index.ts';

/** Options of {@link enroll}. */
export interface EnrollOptions {
  /** Base URL of the provisioning API, e.g. `http://127.0.0.1:8080`. */
  provisioningUrl: string;
  /** The enrollment token (`POST /v1/enrollment-tokens`), sent as `Authorization: Bearer`. */
  enrollmentToken: string;
  /** The id to register. */
  deviceId: string;
  /** The device's new P-256 private key (KeyObject or PEM). Exactly one of `privateKey` and `sign`. */
  privateKey?: KeyObject | string;
  /** Signer for a key in a secure element; then `publicKey` is required. */
  sign?: Es256Signer;
  /** The public key to register (KeyObject or SPKI PEM). Default: derived from `privateKey`. */
  publicKey?: KeyObject | string;
  /** The broker audience; the proof's `aud` is `{audience}:enroll`. Default `latchkey`. */
  audience?: string;
  clockOffsetMs?: number;
  clock?: Clock;
  /** Default 10000 ms. */
  timeoutMs?: number;
}

/** The registered device as the API returns it (api.md §Devices, never a secret). */
export interface EnrolledDevice {
  id: string;
  credentials: Array<{ kid: string; fingerprint: string; createdAt: string | number; expiresAt: string | number | null }>;
  [field: string]: unknown;
}

/**
 * Zero-touch enrollment (api.md §Zero-touch enrollment): registers this device's public key
 * with a one-time enrollment token, proving possession of the private key with an ES256 proof.
 * Errors carry the API's problem `code`: `enrollment_token_invalid`, `proof_invalid`,
 * `device_exists`, `key_in_use`, … (`network_error` when there is no answer).
 *
 * @example
 * ```ts
 * const pair = generateDeviceKeyPair();
 * await saveKeyPair('/var/lib/lock', pair);
 * const device = await enroll({ provisioningUrl, enrollmentToken, deviceId: 'lock-7', privateKey: pair.privateKey });
 * ```
 */
export async function enroll(o: EnrollOptions): Promise<EnrolledDevice> {
  if (o === null || typeof o !== 'object') throw new TypeError('enroll: options are required');
  const deviceId = deviceIdOption(o.deviceId);
  if (typeof o.enrollmentToken !== 'string' || o.enrollmentToken.length === 0) throw new TypeError('enrollmentToken must be a non-empty string');
  const base = withSlash(o.provisioningUrl);
  const privateKey = typeof o.privateKey === 'string' ? loadPrivateKeyPem(o.privateKey) : o.privateKey;
  const publicKey = publicKeyPemOf(o.publicKey, privateKey);
  const proof = await mintEnrollProof({
    deviceId,
    privateKey,
    sign: o.sign,
    audience: o.audience,
    clockOffsetMs: o.clockOffsetMs,
    clock: o.clock,
  });
  const body = await postJson(
    new URL('v1/enroll', base),
    { deviceId, publicKey, proof },
    { authorization: `Bearer ${o.enrollmentToken}` },
    o.timeoutMs ?? 10_000,
  );
  const device = body as Partial<EnrolledDevice> | null;
  if (typeof device !== 'object' || device === null || device.id !== deviceId) {
    throw new DeviceClientError('invalid_response', 'POST /v1/enroll did not return the enrolled device');
  }
  return device as EnrolledDevice;
}

function publicKeyPemOf(publicKey: KeyObject | string | undefined, privateKey: KeyObject | undefined): string {
  if (typeof publicKey === 'string') {
    let key: KeyObject;
    try {
      key = createPublicKey(publicKey);
    } catch {
      throw new TypeError('publicKey must be a P-256 public key PEM');
    }
    return publicKeyToPem(key);
  }
  if (publicKey !== undefined) return publicKeyToPem(publicKey);
  if (privateKey !== undefined) return publicKeyToPem(privateKey);
  throw new TypeError('publicKey is required with sign (the private key never leaves the secure element)');
}
