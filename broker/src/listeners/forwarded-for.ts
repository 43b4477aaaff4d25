import { BlockList, isIP } from 'node:net';
import { isProxyRange, PROXY_RANGES } from '@latchkey/device-sdk/protocol';

const familyOf = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

/**
 * `--trust-proxy` for the broker (docs/operations.md §Behind a proxy): a test for "this peer is
 * one of our proxies", from the entries the protocol core's `isProxyRange` accepts (addresses, CIDR
 * ranges, `loopback`, `linklocal`, `uniquelocal`, the same list the HTTP API takes); null when none
 * is configured. Throws TypeError for an entry that is none of those.
 *
 * @example
 * ```ts
 * const trusted = trustedProxies(['10.0.0.0/8']);
 * trusted?.('10.1.2.3') // true
 * ```
 */
export function trustedProxies(entries: readonly string[]): ((address: string) => boolean) | null {
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const entry of entries) {
    if (!isProxyRange(entry)) throw new TypeError(`not an address or range: ${entry}`);
    const [address = '', prefix] = entry.split('/');
    const named = (PROXY_RANGES as Record<string, ReadonlyArray<readonly [string, number]>>)[entry];
    for (const [net, bits] of named ?? [[address, prefix === undefined ? (isIP(address) === 6 ? 128 : 32) : Number(prefix)] as const]) {
      list.addSubnet(net, bits, familyOf(net));
    }
  }
  return (address) => isIP(address) !== 0 && list.check(address, familyOf(address));
}

/**
 * The client's address: the peer's own, or, when the peer is a trusted proxy, the rightmost
 * `X-Forwarded-For` entry that is not itself a trusted proxy (each proxy appends the address it
 * saw; only what trusted hops appended is believed). A malformed entry stops the walk.
 */
export function clientAddress(peer: string | null, forwardedFor: string | string[] | undefined, trusted: ((address: string) => boolean) | null): string | null {
  if (peer === null || trusted === null || forwardedFor === undefined || !trusted(peer)) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = (hops[i] as string).trim();
    if (isIP(hop) === 0) break;
    client = hop;
    if (!trusted(hop)) break;
  }
  return client;
}
