/**
 * Provisioning HTTP configuration (docs/configuration.md): one typed interface, defaults in one
 * const, checked once, frozen; every problem named. These rules are the only ones: `latchkey up`
 * hands its flags here and reports what this finds.
 */
import { DEFAULT_TOKEN_RULES, isAudience, isProxyRange, MAX_AUDIENCE_LENGTH, PROXY_RANGE_RULE } from '@latchkey/device-sdk/protocol';

export interface HttpConfig {
  /** the broker audience; enrollment proofs use `<audience>:enroll` */
  readonly audience: string;
  /** the admin bearer token (plain; only its SHA-256 is kept in memory by the auth hook) */
  readonly adminToken: string;
  /** bytes; larger bodies get 413 (1 MiB, docs/api.md §Conventions) */
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
  /** removing a credential that verified a connect within this many minutes needs `force` (issue 15); 0 = never */
  readonly keyInUseMinutes: number;
}

/** Every setting but the admin token, which `latchkey up` may generate only when it starts. */
export type HttpSettings = Omit<HttpConfig, 'adminToken'>;

/** One problem with one setting; `message` reads after the setting's name and names others as `{key}`. */
export interface HttpConfigProblem {
  readonly setting: string;
  readonly message: string;
}

export const DEFAULT_HTTP_CONFIG: HttpSettings = Object.freeze({
  audience: DEFAULT_TOKEN_RULES.audience,
  bodyLimit: 1024 * 1024,
  batchBodyLimit: 16 * 1024 * 1024,
  clockTolerance: DEFAULT_TOKEN_RULES.clockTolerance,
  authFailureLimit: 30,
  trustProxy: Object.freeze([]) as readonly string[],
  commandTimeoutMs: 10_000,
  maxCommandTimeoutMs: 60_000,
  keyInUseMinutes: 60,
});

/** The admin token must be long enough not to be guessed. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
const ADMIN_TOKEN = /^[\x21-\x7e]{16,512}$/;
/** What {@link isAdminToken} accepts, for messages. */
export const ADMIN_TOKEN_RULE = `${MIN_ADMIN_TOKEN_LENGTH} to 512 printable characters without spaces`;

/**
 * An admin token this API accepts: 16 to 512 printable ASCII characters, no spaces (it travels
 * as `Authorization: Bearer <token>`).
 *
 * @example
 * ```ts
 * isAdminToken(randomBytes(32).toString('base64url')) // true
 * ```
 */
export function isAdminToken(token: unknown): token is string {
  return typeof token === 'string' && ADMIN_TOKEN.test(token);
}

/**
 * Merges defaults and checks every setting; the admin token only when given (see {@link HttpSettings}).
 *
 * @example
 * ```ts
 * const checked = checkHttpConfig({ audience: 'fleet', clockTolerance: 60 }); // { ok: true, config }
 * ```
 */
export function checkHttpConfig(
  input: Partial<HttpConfig>,
): { ok: true; config: HttpSettings & { readonly adminToken?: string } } | { ok: false; problems: HttpConfigProblem[] } {
  const c = { ...DEFAULT_HTTP_CONFIG, ...input };
  const problems: HttpConfigProblem[] = [];
  const int = (setting: keyof HttpSettings, min: number, max?: number, what = max === undefined ? `an integer ≥ ${min}` : `an integer ${min}..${max}`) => {
    const v = c[setting];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > (max ?? v)) problems.push({ setting, message: `must be ${what}` });
  };
  if (!isAudience(c.audience)) problems.push({ setting: 'audience', message: `must be 1 to ${MAX_AUDIENCE_LENGTH} characters` });
  if (input.adminToken !== undefined && !isAdminToken(input.adminToken)) problems.push({ setting: 'adminToken', message: `must be ${ADMIN_TOKEN_RULE}` });
  int('bodyLimit', 1024);
  int('batchBodyLimit', 1024);
  int('clockTolerance', 0);
  int('authFailureLimit', 0, 1_000_000, 'an integer 0..1000000 (0 = off)');
  if (!Array.isArray(c.trustProxy) || !c.trustProxy.every(isProxyRange)) {
    problems.push({ setting: 'trustProxy', message: `must be ${PROXY_RANGE_RULE}` });
  }
  int('commandTimeoutMs', 100);
  int('maxCommandTimeoutMs', 100);
  int('keyInUseMinutes', 0, 525_600, 'an integer 0..525600 (minutes; 0 = never refuse)');
  if (c.commandTimeoutMs > c.maxCommandTimeoutMs) problems.push({ setting: 'commandTimeoutMs', message: 'must not exceed {maxCommandTimeoutMs}' });
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: Object.freeze({ ...c, trustProxy: Object.freeze([...c.trustProxy]) }) };
}

/**
 * {@link checkHttpConfig} for a complete config, throwing one `TypeError` naming every problem.
 *
 * @example
 * ```ts
 * const config = resolveHttpConfig({ adminToken: process.env.LATCHKEY_ADMIN_TOKEN! });
 * ```
 */
export function resolveHttpConfig(input: Partial<HttpConfig> & { adminToken: string }): HttpConfig {
  if (typeof input?.adminToken !== 'string') throw new TypeError(`invalid provisioning config: adminToken must be ${ADMIN_TOKEN_RULE}`);
  const checked = checkHttpConfig(input);
  if (checked.ok) return checked.config as HttpConfig; // adminToken: checked above and by checkHttpConfig
  const text = checked.problems.map((p) => `${p.setting} ${p.message.replace(/\{(\w+)\}/g, '$1')}`);
  throw new TypeError(`invalid provisioning config: ${text.join('; ')}`);
}
