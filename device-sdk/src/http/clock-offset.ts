import { DeviceClientError } from '../errors.ts';
import type { Clock } from '../protocol/index.ts';
import { getJson } from './http-json.ts';

export interface FetchClockOffsetOptions {
  /** the local clock to correct; default `Date.now` */
  clock?: Clock;
  /** give up after this many ms; default 10000 */
  timeoutMs?: number;
}

/**
 * Asks the provisioning service for its time (`GET /v1/time` → `{now}` epoch seconds, docs/api.md
 * §Zero-touch enrollment) and returns the offset to add to the local clock, in ms. The server time
 * is taken to be the midpoint of the request, as NTP does; `now` has second resolution, which the
 * broker's clock tolerance absorbs.
 *
 * @example
 * ```ts
 * const clockOffsetMs = await fetchClockOffset('http://127.0.0.1:8080');
 * const { token } = await mintConnectToken({ subject: 'thermo-1', privateKey, clockOffsetMs });
 * ```
 */
export async function fetchClockOffset(provisioningUrl: string, o: FetchClockOffsetOptions = {}): Promise<number> {
  const clock = o.clock ?? Date.now;
  const sentAt = clock();
  const body = await getJson(new URL('v1/time', withSlash(provisioningUrl)), o.timeoutMs ?? 10_000);
  const receivedAt = clock();
  const now = (body as { now?: unknown } | null)?.now;
  if (typeof now !== 'number' || !Number.isFinite(now) || now <= 0) {
    throw new DeviceClientError('invalid_response', 'GET /v1/time did not return {now: epoch seconds}');
  }
  return Math.round(now * 1000 - (sentAt + receivedAt) / 2);
}

/** `new URL('v1/x', base)` keeps a base path only when it ends with `/`. */
export function withSlash(url: string): string {
  if (typeof url !== 'string' || url.length === 0) throw new TypeError('provisioningUrl must be a URL string');
  return url.endsWith('/') ? url : `${url}/`;
}
