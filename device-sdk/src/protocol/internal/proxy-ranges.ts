import { isIP } from 'node:net';

/**
 * The named ranges a `trustProxy` entry may be, with their CIDRs (the definitions of
 * @fastify/proxy-addr, which the HTTP API matches with; the broker matches with these).
 */
export const PROXY_RANGES: Readonly<Record<'loopback' | 'linklocal' | 'uniquelocal', ReadonlyArray<readonly [string, number]>>> = Object.freeze({
  loopback: [['127.0.0.0', 8], ['::1', 128]],
  linklocal: [['169.254.0.0', 16], ['fe80::', 10]],
  uniquelocal: [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['fc00::', 7]],
});

/** The names of {@link PROXY_RANGES}. */
export const PROXY_RANGE_NAMES = Object.freeze(Object.keys(PROXY_RANGES)) as readonly (keyof typeof PROXY_RANGES)[];

/** What a `trustProxy` list may hold, for messages. */
export const PROXY_RANGE_RULE = `a list of IP addresses, CIDR ranges (10.0.0.0/8) or ${PROXY_RANGE_NAMES.join(', ')}`;

/**
 * One entry of `trustProxy` (`--trust-proxy`, for the broker and the HTTP API alike: the proxies
 * whose `X-Forwarded-For` names the client, whose source address throttling counts): an IPv4 or
 * IPv6 address, a CIDR range such as `10.0.0.0/8` or `fd00::/8`, or one of {@link PROXY_RANGE_NAMES}.
 *
 * @example
 * ```ts
 * isProxyRange('10.0.0.0/8') // true
 * isProxyRange('10.0.0.0/33') // false
 * ```
 */
export function isProxyRange(entry: unknown): entry is string {
  if (typeof entry !== 'string') return false;
  if ((PROXY_RANGE_NAMES as readonly string[]).includes(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}
