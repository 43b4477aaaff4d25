import { ProtocolError } from './errors.ts';
import { MAX_CLIENT_ID_LENGTH } from './limits.ts';

/** protocol.md §Device ids: 3 to 64 characters, never `/ + #`, case-sensitive. */
export const DEVICE_ID_PATTERN = /^[A-Za-z][A-Za-z0-9._-]{2,63}$/;
/** protocol.md §Service accounts: the service name. */
export const SERVICE_NAME_PATTERN = /^[a-z][a-z0-9-]{2,63}$/;
/** protocol.md §Service accounts: an instance suffix after `svc:{name}:`. Same alphabet as a device id level. */
export const SERVICE_INSTANCE_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export const SERVICE_PREFIX = 'svc:';

export function isDeviceId(s: unknown): s is string {
  return typeof s === 'string' && DEVICE_ID_PATTERN.test(s);
}

export function isServiceName(s: unknown): s is string {
  return typeof s === 'string' && SERVICE_NAME_PATTERN.test(s);
}

/** A service-account instance label (the part after `svc:{name}:`). */
export function isServiceInstance(s: unknown): s is string {
  return typeof s === 'string' && SERVICE_INSTANCE_PATTERN.test(s);
}

/** Throws `invalid_device_id` unless `s` is a valid device id. */
export function assertDeviceId(s: unknown): string {
  if (!isDeviceId(s)) {
    throw new ProtocolError('invalid_device_id', `device id must match ${DEVICE_ID_PATTERN.source}`);
  }
  return s;
}

/** Throws `invalid_service_name` unless `s` is a valid service-account name. */
export function assertServiceName(s: unknown): string {
  if (!isServiceName(s)) {
    throw new ProtocolError('invalid_service_name', `service name must match ${SERVICE_NAME_PATTERN.source}`);
  }
  return s;
}

/**
 * Who a client id speaks for. `principal` is the registry key and the token `sub`:
 * the device id, or `svc:{name}` for a service account (whatever the instance).
 */
export type ClientIdentity =
  | { kind: 'device'; principal: string; deviceId: string }
  | { kind: 'service'; principal: string; serviceName: string; instance: string | null };

/**
 * Parses an MQTT client id (protocol.md §MQTT CONNECT, §Service accounts).
 * Returns null for anything that is neither a device id nor `svc:{name}[:{instance}]`
 * (CONNACK 2).
 *
 * @example
 * ```ts
 * parseClientId('svc:dashboard:2') // { kind: 'service', principal: 'svc:dashboard', serviceName: 'dashboard', instance: '2' }
 * ```
 */
export function parseClientId(clientId: unknown): ClientIdentity | null {
  if (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > MAX_CLIENT_ID_LENGTH) return null;
  if (DEVICE_ID_PATTERN.test(clientId)) return { kind: 'device', principal: clientId, deviceId: clientId };
  if (!clientId.startsWith(SERVICE_PREFIX)) return null;
  const rest = clientId.slice(SERVICE_PREFIX.length);
  const colon = rest.indexOf(':');
  const name = colon === -1 ? rest : rest.slice(0, colon);
  const instance = colon === -1 ? null : rest.slice(colon + 1);
  if (!SERVICE_NAME_PATTERN.test(name)) return null;
  if (instance !== null && !SERVICE_INSTANCE_PATTERN.test(instance)) return null;
  return { kind: 'service', principal: SERVICE_PREFIX + name, serviceName: name, instance };
}

/**
 * A principal: what a token's `sub` and the registry name — a device id, or `svc:{name}` for a
 * service account (never with an instance suffix).
 *
 * @example
 * ```ts
 * isPrincipal('svc:dashboard') // true; isPrincipal('svc:dashboard:2') // false
 * ```
 */
export function isPrincipal(s: unknown): s is string {
  return parsePrincipal(s) !== null;
}

/**
 * What a principal names: a device, or a service account by its name; null for anything that is
 * neither (the registry and the broker tell the two kinds apart only through this).
 *
 * @example
 * ```ts
 * parsePrincipal('svc:dashboard') // { kind: 'service', serviceName: 'dashboard' }
 * ```
 */
export function parsePrincipal(s: unknown): { kind: 'device'; deviceId: string } | { kind: 'service'; serviceName: string } | null {
  if (isDeviceId(s)) return { kind: 'device', deviceId: s };
  if (typeof s !== 'string' || !s.startsWith(SERVICE_PREFIX)) return null;
  const name = s.slice(SERVICE_PREFIX.length);
  return SERVICE_NAME_PATTERN.test(name) ? { kind: 'service', serviceName: name } : null;
}

/** The token `sub` / registry principal of a service account. */
export function servicePrincipal(name: string): string {
  return SERVICE_PREFIX + name;
}

/**
 * The MQTT client id of a service account: `svc:{name}`, or `svc:{name}:{instance}` for one of
 * several connections at once. Throws TypeError for an invalid name or instance (caller misuse).
 *
 * @example
 * ```ts
 * serviceClientId('dashboard', 'worker-2') // 'svc:dashboard:worker-2'
 * ```
 */
export function serviceClientId(name: string, instance?: string): string {
  if (!isServiceName(name)) throw new TypeError(`serviceName must match ${SERVICE_NAME_PATTERN.source}`);
  if (instance === undefined) return servicePrincipal(name);
  if (!isServiceInstance(instance)) throw new TypeError(`instance must match ${SERVICE_INSTANCE_PATTERN.source}`);
  return `${servicePrincipal(name)}:${instance}`;
}
