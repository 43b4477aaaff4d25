import type { Clock } from '@latchkey/device-sdk/protocol';
import type { Registry } from '../registry/index.ts';
import type { HttpConfig } from './config.ts';
import type { HttpThrottles } from './failure-limiter.ts';
import type { DeviceMessagingPort } from './messaging-port.ts';
import { assertDeviceId } from '@latchkey/device-sdk/protocol';

/** What every route plugin receives from `buildApp`. */
export interface RouteDeps {
  config: HttpConfig;
  registry: Registry;
  clock: Clock;
  messaging: DeviceMessagingPort | null;
  throttles: HttpThrottles;
  brokerReady: (() => boolean) | null;
}

/** The actor recorded in the audit log for admin-token requests. */
export const ADMIN_ACTOR = 'admin';

/** A device id from a path parameter: 400 `invalid_device_id` unless valid (protocol.md §Device ids). */
export function deviceIdParam(id: string): string {
  return assertDeviceId(id);
}
