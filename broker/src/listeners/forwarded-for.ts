import { BlockList, isIP } from 'node:net';

/** Named ranges, as @fastify/proxy-addr (which the HTTP API uses for the same setting) defines them. */
const NAMED_RANGES: Readonly<Record<string, ReadonlyArray<readonly [string, number]>>> = {
  loopback: [['127.0.0.0', 8], ['::1', 128]],
  linklocal: [['169.254.0.0', 16], ['fe80::', 10]],
  uniquelocal: [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['fc00::', 7]],
};

const familyOf = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

/**
 * `--trust-proxy` for the broker (docs/operations.md §Behind a proxy): a test for "this peer is
 * one of our proxies", from addresses, CIDR ranges and `loopback`, `linklocal`, `uniquelocal`;
 * null when none is configured. Throws TypeError for an entry that is none of those.
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
    const [address = '', prefix, ...rest] = entry.split('/');
    const ranges = NAMED_RANGES[entry] ?? [[address, prefix === undefined ? (isIP(address) === 6 ? 128 : 32) : Number(prefix)] as const];
    for (const [net, bits] of ranges) {
      if (isIP(net) === 0 || rest.length > 0 || (prefix !== undefined && !/^\d{1,3}$/.test(prefix))) throw new TypeError(`not an address or range: ${entry}`);
      try {
        list.addSubnet(net, bits, familyOf(net));
      } catch {
        throw new TypeError(`not an address or range: ${entry}`);
      }
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
