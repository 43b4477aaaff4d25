import { accessSync, constants as fsConstants } from 'node:fs';
import { isIP } from 'node:net';
import { DEFAULT_LIMITS, DEFAULT_TOKEN_RULES } from '@latchkey/device-sdk/protocol';
import { DEFAULT_HTTP_CONFIG, isProxyRange } from '@latchkey/provisioning';
import { CliError } from './cli-error.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Configuration of `latchkey up` (cli.md §Configuration). Times are seconds, sizes bytes,
 * ports 0 mean "any free port", `null` means "off".
 */
export interface UpConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly httpPort: number;
  readonly mqttPort: number;
  readonly mqttsPort: number | null;
  /** paths of the PEM files for the MQTTS listener */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly wsPort: number | null;
  readonly audience: string;
  readonly maxTokenLifetime: number;
  readonly clockTolerance: number;
  readonly requireJti: boolean;
  readonly connectTimeout: number;
  readonly maxPacketSize: number;
  readonly authFailureLimit: number;
  /** refused admin / enrollment tokens per minute before 429, per budget (docs/operations.md §Throttles) */
  readonly httpAuthFailureLimit: number;
  /** proxies whose X-Forwarded-For is believed (addresses, CIDR ranges, loopback…); null = none */
  readonly trustProxy: readonly string[] | null;
  /** seconds of audit history kept (refused connects, admin actions, enrollments); older entries are pruned */
  readonly auditRetention: number;
  /** refused-connect records kept at most; the oldest are pruned first */
  readonly auditMaxRefusals: number;
  /** null: generated on first start and kept in `<dataDir>/admin-token` */
  readonly adminToken: string | null;
  readonly logLevel: LogLevel;
}

/** Every default in one place (cli.md §Configuration; design.md style #6). */
export const DEFAULT_UP_CONFIG: UpConfig = Object.freeze({
  dataDir: './data',
  host: '127.0.0.1',
  httpPort: 8080,
  mqttPort: 1883,
  mqttsPort: null,
  tlsCert: null,
  tlsKey: null,
  wsPort: null,
  audience: DEFAULT_TOKEN_RULES.audience,
  maxTokenLifetime: DEFAULT_TOKEN_RULES.maxTokenLifetime,
  clockTolerance: DEFAULT_TOKEN_RULES.clockTolerance,
  requireJti: DEFAULT_TOKEN_RULES.requireJti,
  connectTimeout: DEFAULT_LIMITS.connectTimeout,
  maxPacketSize: DEFAULT_LIMITS.maxPacketSize,
  authFailureLimit: DEFAULT_LIMITS.authFailureLimit,
  httpAuthFailureLimit: DEFAULT_HTTP_CONFIG.authFailureLimit,
  trustProxy: null,
  auditRetention: 30 * 86_400,
  auditMaxRefusals: 100_000,
  adminToken: null,
  logLevel: 'info',
});

/** Parses one raw value; returns the value, or the reason it is invalid. */
type Parse = (raw: string) => { ok: true; value: unknown } | { ok: false; expected: string };

interface Setting {
  flag: string;
  env: string;
  parse: Parse;
  /** the value may be echoed in an error (never for secrets) */
  echo: boolean;
}

const ok = (value: unknown) => ({ ok: true as const, value });
const bad = (expected: string) => ({ ok: false as const, expected });
const integer = (min: number, max: number, expected: string): Parse => (raw) => {
  const n = /^\d{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
  return Number.isSafeInteger(n) && n >= min && n <= max ? ok(n) : bad(expected);
};
const port = integer(0, 65_535, 'an integer port 0..65535 (0 = any free port)');
const text: Parse = (raw) => (raw.length > 0 ? ok(raw) : bad('a non-empty string'));
const bool: Parse = (raw) => {
  const v = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return ok(true);
  if (['0', 'false', 'no', 'off'].includes(v)) return ok(false);
  return bad('true or false');
};
const host: Parse = (raw) =>
  isIP(raw) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$/.test(raw)
    ? ok(raw)
    : bad('an IP address or host name');
const proxyRanges: Parse = (raw) => {
  const entries = raw.split(',').map((e) => e.trim());
  return entries.every(isProxyRange) ? ok(Object.freeze(entries)) : bad('a comma-separated list of IP addresses, CIDR ranges (10.0.0.0/8), loopback, linklocal or uniquelocal');
};
const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
/** `30d`, `12h`, `90m`, `3600s` or plain seconds. */
const duration = (min: number, max: number, expected: string): Parse => (raw) => {
  const m = /^(\d{1,9})([smhd]?)$/.exec(raw);
  const n = m === null ? Number.NaN : Number(m[1]) * DURATION_UNITS[m[2] || 's']!;
  return Number.isSafeInteger(n) && n >= min && n <= max ? ok(n) : bad(expected);
};
const readableFile: Parse = (raw) => {
  if (raw.length === 0) return bad('a readable PEM file');
  try {
    accessSync(raw, fsConstants.R_OK);
    return ok(raw);
  } catch {
    return bad('a readable PEM file');
  }
};

/** Flag, environment variable and parser of every setting (cli.md §Configuration). */
export const UP_SETTINGS: { readonly [K in keyof UpConfig]: Setting } = Object.freeze({
  dataDir: { flag: 'data-dir', env: 'LATCHKEY_DATA_DIR', parse: text, echo: true },
  host: { flag: 'host', env: 'LATCHKEY_HOST', parse: host, echo: true },
  httpPort: { flag: 'http-port', env: 'LATCHKEY_HTTP_PORT', parse: port, echo: true },
  mqttPort: { flag: 'mqtt-port', env: 'LATCHKEY_MQTT_PORT', parse: port, echo: true },
  mqttsPort: { flag: 'mqtts-port', env: 'LATCHKEY_MQTTS_PORT', parse: port, echo: true },
  tlsCert: { flag: 'tls-cert', env: 'LATCHKEY_TLS_CERT', parse: readableFile, echo: true },
  tlsKey: { flag: 'tls-key', env: 'LATCHKEY_TLS_KEY', parse: readableFile, echo: true },
  wsPort: { flag: 'ws-port', env: 'LATCHKEY_WS_PORT', parse: port, echo: true },
  audience: { flag: 'audience', env: 'LATCHKEY_AUDIENCE', parse: (raw) => (raw.length > 0 && raw.length <= 256 ? ok(raw) : bad('1 to 256 characters')), echo: true },
  maxTokenLifetime: { flag: 'max-token-lifetime', env: 'LATCHKEY_MAX_TOKEN_LIFETIME', parse: integer(1, 31_536_000, 'an integer number of seconds, 1..31536000'), echo: true },
  clockTolerance: { flag: 'clock-tolerance', env: 'LATCHKEY_CLOCK_TOLERANCE', parse: integer(0, 86_400, 'an integer number of seconds, 0..86400'), echo: true },
  requireJti: { flag: 'require-jti', env: 'LATCHKEY_REQUIRE_JTI', parse: bool, echo: true },
  connectTimeout: { flag: 'connect-timeout', env: 'LATCHKEY_CONNECT_TIMEOUT', parse: integer(1, 3600, 'an integer number of seconds, 1..3600'), echo: true },
  maxPacketSize: { flag: 'max-packet-size', env: 'LATCHKEY_MAX_PACKET_SIZE', parse: integer(8192, 268_435_460, 'an integer number of bytes, 8192..268435460 (a CONNECT carries a token of up to 4096 bytes)'), echo: true },
  authFailureLimit: { flag: 'auth-failure-limit', env: 'LATCHKEY_AUTH_FAILURE_LIMIT', parse: integer(0, 1_000_000, 'an integer 0..1000000 (0 = off)'), echo: true },
  httpAuthFailureLimit: { flag: 'http-auth-failure-limit', env: 'LATCHKEY_HTTP_AUTH_FAILURE_LIMIT', parse: integer(0, 1_000_000, 'an integer 0..1000000 (0 = off)'), echo: true },
  trustProxy: { flag: 'trust-proxy', env: 'LATCHKEY_TRUST_PROXY', parse: proxyRanges, echo: true },
  auditRetention: { flag: 'audit-retention', env: 'LATCHKEY_AUDIT_RETENTION', parse: duration(3600, 3650 * 86_400, 'a duration of 1h..3650d, e.g. 30d, 12h, 3600s'), echo: true },
  auditMaxRefusals: { flag: 'audit-max-refusals', env: 'LATCHKEY_AUDIT_MAX_REFUSALS', parse: integer(1000, 100_000_000, 'an integer 1000..100000000'), echo: true },
  // http-api.md §Authentication: a configured admin token must be hard to guess.
  adminToken: { flag: 'admin-token', env: 'LATCHKEY_ADMIN_TOKEN', parse: (raw) => (/^[\x21-\x7e]{16,512}$/.test(raw) ? ok(raw) : bad('16 to 512 printable characters without spaces')), echo: false },
  logLevel: { flag: 'log-level', env: 'LATCHKEY_LOG_LEVEL', parse: (raw) => ((LOG_LEVELS as readonly string[]).includes(raw) ? ok(raw) : bad(`one of ${LOG_LEVELS.join(', ')}`)), echo: true },
});

/** The parseArgs option table of `up`, derived from UP_SETTINGS. */
export const UP_OPTIONS = Object.freeze(
  Object.fromEntries(
    Object.entries(UP_SETTINGS).map(([key, s]) => [s.flag, { type: key === 'requireJti' ? ('boolean' as const) : ('string' as const) }]),
  ),
) as Readonly<Record<string, { type: 'string' | 'boolean' }>>;

/**
 * Resolves `up`'s configuration once: flags over environment over defaults. Every problem is
 * collected and reported in ONE `invalid_config` CliError naming each setting (flag and
 * variable); secrets are never echoed. An empty environment variable counts as unset.
 *
 * @example
 * ```ts
 * const config = resolveUpConfig({ 'mqtt-port': '0' }, process.env);
 * ```
 */
export function resolveUpConfig(
  flags: Readonly<Record<string, string | boolean | undefined>>,
  env: Readonly<Record<string, string | undefined>>,
): UpConfig {
  const problems: string[] = [];
  const merged: Record<string, unknown> = { ...DEFAULT_UP_CONFIG };
  for (const [key, setting] of Object.entries(UP_SETTINGS) as [keyof UpConfig, Setting][]) {
    const fromFlag = flags[setting.flag];
    const fromEnv = env[setting.env];
    let raw: string;
    let source: string;
    if (fromFlag !== undefined) {
      raw = typeof fromFlag === 'boolean' ? String(fromFlag) : fromFlag;
      source = `--${setting.flag} (${setting.env})`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw = fromEnv;
      source = `${setting.env} (--${setting.flag})`;
    } else {
      continue;
    }
    const parsed = setting.parse(raw);
    if (parsed.ok) merged[key] = parsed.value;
    else problems.push(`${source} must be ${parsed.expected}${setting.echo ? `, got ${JSON.stringify(clip(raw))}` : ''}`);
  }
  problems.push(...crossChecks(merged as unknown as UpConfig));
  if (problems.length > 0) throw new CliError('invalid_config', problems.join('; '));
  return Object.freeze(merged) as unknown as UpConfig;
}

/** Rules that involve more than one setting. */
function crossChecks(c: UpConfig): string[] {
  const out: string[] = [];
  const name = (k: keyof UpConfig) => `--${UP_SETTINGS[k].flag} (${UP_SETTINGS[k].env})`;
  if (c.mqttsPort !== null && (c.tlsCert === null || c.tlsKey === null)) {
    out.push(`${name('mqttsPort')} needs ${name('tlsCert')} and ${name('tlsKey')}`);
  }
  if (c.mqttsPort === null && (c.tlsCert !== null || c.tlsKey !== null)) {
    out.push(`${c.tlsCert !== null ? name('tlsCert') : name('tlsKey')} is set but ${name('mqttsPort')} is not`);
  }
  const ports: [keyof UpConfig, number | null][] = [['httpPort', c.httpPort], ['mqttPort', c.mqttPort], ['mqttsPort', c.mqttsPort], ['wsPort', c.wsPort]];
  const used = new Map<number, keyof UpConfig>();
  for (const [key, p] of ports) {
    if (p === null || p === 0) continue;
    const other = used.get(p);
    if (other !== undefined) out.push(`${name(key)} and ${name(other)} are both ${p}`);
    else used.set(p, key);
  }
  return out;
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 60)}…` : s;
}

/** True for addresses that only this machine can reach (cli.md: loopback by default). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
