/**
 * Provisioning HTTP configuration (cli.md §Configuration): one typed interface, defaults in
 * one const, validated once, frozen; every problem reported in one TypeError naming the setting.
 */
import { isIP } from 'node:net';
import { DEFAULT_TOKEN_RULES } from '@latchkey/device-sdk/protocol';

export interface HttpConfig {
  /** the broker audience; enrollment proofs use `<audience>:enroll` */
  readonly audience: string;
  /** the admin bearer token (plain; only its SHA-256 is kept in memory by the auth hook) */
  readonly adminToken: string;
  /** bytes; larger bodies get 413 (http-api.md §Errors: 1 MiB) */
  readonly bodyLimit: number;
  /** bytes, for `POST /v1/devices:batch` only (10,000 devices do not fit in 1 MiB) */
  readonly batchBodyLimit: number;
  /** seconds of clock skew allowed on enrollment proofs */
  readonly clockTolerance: number;
  /**
   * refused authentications per minute before 429 (0 = off), in each budget separately: admin
   * tokens per address, enrollment tokens per address and per token id
   */
  readonly authFailureLimit: number;
  /**
   * proxies whose `X-Forwarded-For` is believed (IP addresses, CIDR ranges, or `loopback`,
   * `linklocal`, `uniquelocal`); empty: the connection's own address is the client's
   */
  readonly trustProxy: readonly string[];
  /** default and largest command reply wait, ms */
  readonly commandTimeoutMs: number;
  readonly maxCommandTimeoutMs: number;
}

export const DEFAULT_HTTP_CONFIG = Object.freeze({
  audience: DEFAULT_TOKEN_RULES.audience,
  bodyLimit: 1024 * 1024,
  batchBodyLimit: 16 * 1024 * 1024,
  clockTolerance: DEFAULT_TOKEN_RULES.clockTolerance,
  authFailureLimit: 30,
  trustProxy: Object.freeze([]) as readonly string[],
  commandTimeoutMs: 10_000,
  maxCommandTimeoutMs: 60_000,
});

/** The admin token must be long enough not to be guessed. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/**
 * Merges defaults and validates.
 *
 * @example
 * ```ts
 * const config = resolveHttpConfig({ adminToken: process.env.LATCHKEY_ADMIN_TOKEN! });
 * ```
 */
export function resolveHttpConfig(input: Partial<HttpConfig> & { adminToken: string }): HttpConfig {
  const c = { ...DEFAULT_HTTP_CONFIG, ...input };
  const problems: string[] = [];
  const positiveInt = (name: keyof HttpConfig, min = 1) => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) problems.push(`${name} must be an integer ≥ ${min}`);
  };
  if (typeof c.audience !== 'string' || c.audience.length === 0 || c.audience.length > 256) {
    problems.push('audience must be a non-empty string');
  }
  if (typeof c.adminToken !== 'string' || c.adminToken.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(c.adminToken)) {
    problems.push(`adminToken must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters without spaces`);
  }
  positiveInt('bodyLimit', 1024);
  positiveInt('batchBodyLimit', 1024);
  positiveInt('clockTolerance', 0);
  positiveInt('authFailureLimit', 0);
  if (!Array.isArray(c.trustProxy) || !c.trustProxy.every(isProxyRange)) {
    problems.push('trustProxy must be a list of IP addresses, CIDR ranges, loopback, linklocal or uniquelocal');
  }
  positiveInt('commandTimeoutMs', 100);
  positiveInt('maxCommandTimeoutMs', 100);
  if (c.commandTimeoutMs > c.maxCommandTimeoutMs) problems.push('commandTimeoutMs must not exceed maxCommandTimeoutMs');
  if (problems.length > 0) throw new TypeError(`invalid provisioning config: ${problems.join('; ')}`);
  return Object.freeze({ ...c, trustProxy: Object.freeze([...c.trustProxy]) });
}

/** Named ranges `trustProxy` accepts besides addresses and CIDRs (those of @fastify/proxy-addr). */
export const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'] as const;

/**
 * One entry of `trustProxy` (`--trust-proxy`): an IPv4/IPv6 address, a CIDR range such as
 * `10.0.0.0/8` or `fd00::/8`, or one of {@link PROXY_RANGE_NAMES}.
 *
 * @example
 * ```ts
 * isProxyRange('10.0.0.0/8') // true
 * isProxyRange('10.0.0.0/33') // false
 * ```
 */
export function isProxyRange(entry: unknown): boolean {
  if (typeof entry !== 'string') return false;
  if ((PROXY_RANGE_NAMES as readonly string[]).includes(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}
