import { DEVICE_ID_PATTERN } from './ids.ts';
import { MAX_GCP_CLIENT_ID_LENGTH, type TokenRules } from './limits.ts';

/**
 * protocol.md §Cloud IoT Core client ids: the Cloud IoT Core client id,
 * `projects/{project}/locations/{location}/registries/{registry}/devices/{device}`.
 */
export interface GcpClientId {
  readonly project: string;
  readonly location: string;
  readonly registry: string;
  /** `{device}`: a latchkey device id, or the numeric id (`numId`) the device was imported with */
  readonly device: { readonly kind: 'id'; readonly deviceId: string } | { readonly kind: 'numId'; readonly numId: string };
}

/** A Google Cloud project id: 6–30 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen. */
export const GCP_PROJECT_PATTERN = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
/** A Cloud IoT Core location (region), e.g. `us-central1`, `europe-west1`. */
export const GCP_LOCATION_PATTERN = /^[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
/** A Cloud IoT Core registry id: 3–255 characters, starting with a letter (Cloud IoT Core's own rule). */
export const GCP_REGISTRY_PATTERN = /^[A-Za-z][A-Za-z0-9_.+~%-]{2,254}$/;
/** A Cloud IoT Core `numId`: an unsigned 64-bit integer in canonical decimal (exports write int64 as strings). */
export const GCP_NUM_ID_PATTERN = /^(0|[1-9][0-9]{0,19})$/;
const MAX_UINT64 = 2n ** 64n - 1n;

export function isGcpProject(s: unknown): s is string {
  return typeof s === 'string' && GCP_PROJECT_PATTERN.test(s);
}

export function isGcpLocation(s: unknown): s is string {
  return typeof s === 'string' && GCP_LOCATION_PATTERN.test(s);
}

export function isGcpRegistry(s: unknown): s is string {
  return typeof s === 'string' && GCP_REGISTRY_PATTERN.test(s);
}

export function isGcpNumId(s: unknown): s is string {
  return typeof s === 'string' && GCP_NUM_ID_PATTERN.test(s) && BigInt(s) <= MAX_UINT64;
}

/**
 * Parses a Cloud IoT Core client id (protocol.md §Cloud IoT Core client ids). `{device}` is a latchkey device id
 * (protocol.md §Device ids: it starts with a letter) or a numId (digits only), so the two never
 * collide. Returns null for anything else, including ids outside latchkey's alphabet (such a device
 * cannot have been imported). Whether the project is enabled is the broker's question.
 *
 * @example
 * ```ts
 * parseGcpClientId('projects/acme-iot/locations/us-central1/registries/plant-7/devices/2820826361193805')
 * // { project: 'acme-iot', location: 'us-central1', registry: 'plant-7', device: { kind: 'numId', numId: '2820826361193805' } }
 * ```
 */
export function parseGcpClientId(clientId: unknown): GcpClientId | null {
  if (typeof clientId !== 'string' || clientId.length > MAX_GCP_CLIENT_ID_LENGTH) return null;
  const parts = clientId.split('/');
  if (parts.length !== 8 || parts[0] !== 'projects' || parts[2] !== 'locations' || parts[4] !== 'registries' || parts[6] !== 'devices') return null;
  const [, project, , location, , registry, , device] = parts as [string, string, string, string, string, string, string, string];
  if (!isGcpProject(project) || !isGcpLocation(location) || !isGcpRegistry(registry)) return null;
  if (DEVICE_ID_PATTERN.test(device)) return { project, location, registry, device: { kind: 'id', deviceId: device } };
  if (isGcpNumId(device)) return { project, location, registry, device: { kind: 'numId', numId: device } };
  return null;
}

/**
 * The client id Cloud IoT Core firmware connects with. Throws TypeError for a part outside its
 * alphabet (caller misuse).
 *
 * @example
 * ```ts
 * gcpClientId({ project: 'acme-iot', location: 'us-central1', registry: 'plant-7', device: 'thermo-1' })
 * // 'projects/acme-iot/locations/us-central1/registries/plant-7/devices/thermo-1'
 * ```
 */
export function gcpClientId(o: { project: string; location: string; registry: string; device: string }): string {
  const id = `projects/${o.project}/locations/${o.location}/registries/${o.registry}/devices/${o.device}`;
  if (parseGcpClientId(id) === null) throw new TypeError('project, location, registry and device must each follow their Cloud IoT Core alphabet');
  return id;
}

/** protocol.md §Cloud IoT Core tokens: the skew and lifetime Cloud IoT Core allowed, both configurable. Seconds. */
export const DEFAULT_GCP_TOKEN_RULES = Object.freeze({
  /** largest `exp − iat` */
  maxTokenLifetime: 86_400,
  /** clock skew for `iat`, `exp` and `nbf`; the session also ends at `exp` + this */
  clockTolerance: 600,
});

/**
 * The token rules for a Cloud IoT Core client id (used with `GCP_DIALECT`): `aud` is the client id's
 * project, the lifetime cap and skew are the compatibility mode's, and no `jti` is required (Cloud IoT
 * Core firmware never sends one).
 *
 * @example
 * ```ts
 * verifyToken(password, { ...gcpTokenRules('acme-iot', DEFAULT_GCP_TOKEN_RULES), dialect: GCP_DIALECT, now, principal, resolveCredentials });
 * ```
 */
export function gcpTokenRules(project: string, limits: { maxTokenLifetime: number; clockTolerance: number }): TokenRules {
  return { audience: project, maxTokenLifetime: limits.maxTokenLifetime, clockTolerance: limits.clockTolerance, requireJti: false };
}
