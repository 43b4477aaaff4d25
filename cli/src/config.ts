import { checkBrokerConfig, DEFAULT_BROKER_CONFIG, type BrokerConfig } from '@latchkey/broker';
import { checkHttpConfig, DEFAULT_HTTP_CONFIG, type HttpSettings } from '@latchkey/provisioning';
import { CliError } from './cli-error.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Configuration of `latchkey up` (docs/configuration.md). The broker's and the HTTP API's settings
 * are theirs: `resolveBrokerConfig` and the HTTP config resolver are the only validators, and this
 * module composes them from flags and environment variables. Times are seconds, sizes bytes.
 */
export interface UpConfig {
  readonly dataDir: string;
  readonly httpPort: number;
  /** null: generated on first start and kept in `<dataDir>/admin-token` */
  readonly adminToken: string | null;
  readonly logLevel: LogLevel;
  /** checked by the broker's own rules (TLS material already read); `host` is also where HTTP listens */
  readonly broker: BrokerConfig;
  /** checked by the HTTP API's own rules; the admin token joins them when the stack starts */
  readonly http: HttpSettings;
}

/** The settings `latchkey up` itself owns. */
type CliSetting = 'dataDir' | 'httpPort' | 'adminToken' | 'logLevel';
/** The broker settings `latchkey up` exposes as flags. */
type BrokerSetting = Extract<keyof BrokerConfig, 'host' | 'mqttPort' | 'mqttsPort' | 'tlsCert' | 'tlsKey' | 'wsPort' | 'audience' | 'maxTokenLifetime' | 'clockTolerance' | 'requireJti' | 'connectTimeout' | 'maxPacketSize' | 'authFailureLimit'>;
export type UpSetting = CliSetting | BrokerSetting;

interface Setting {
  flag: string;
  env: string;
  /** whose rules check the value: the broker's, the HTTP API's (the admin token), or this module's */
  owner: 'broker' | 'http' | 'cli';
  /** how the flag's text becomes a value; `switch` settings take true/false words */
  kind: 'text' | 'number' | 'switch';
  /** the value may be echoed in an error (never for secrets) */
  echo: boolean;
}

const setting = (flag: string, owner: Setting['owner'], kind: Setting['kind'], echo = true): Setting => ({
  flag,
  env: `LATCHKEY_${flag.toUpperCase().replace(/-/g, '_')}`,
  owner,
  kind,
  echo,
});

/** Flag and environment variable of every setting (docs/configuration.md). */
export const UP_SETTINGS: { readonly [K in UpSetting]: Setting } = Object.freeze({
  dataDir: setting('data-dir', 'cli', 'text'),
  host: setting('host', 'broker', 'text'),
  httpPort: setting('http-port', 'cli', 'number'),
  mqttPort: setting('mqtt-port', 'broker', 'number'),
  mqttsPort: setting('mqtts-port', 'broker', 'number'),
  tlsCert: setting('tls-cert', 'broker', 'text'),
  tlsKey: setting('tls-key', 'broker', 'text'),
  wsPort: setting('ws-port', 'broker', 'number'),
  audience: setting('audience', 'broker', 'text'),
  maxTokenLifetime: setting('max-token-lifetime', 'broker', 'number'),
  clockTolerance: setting('clock-tolerance', 'broker', 'number'),
  requireJti: setting('require-jti', 'broker', 'switch'),
  connectTimeout: setting('connect-timeout', 'broker', 'number'),
  maxPacketSize: setting('max-packet-size', 'broker', 'number'),
  authFailureLimit: setting('auth-failure-limit', 'broker', 'number'),
  // docs/api.md §Conventions: a configured admin token must be hard to guess
  adminToken: setting('admin-token', 'http', 'text', false),
  logLevel: setting('log-level', 'cli', 'text'),
});

/** Every default in one place: the owners' own, plus this module's four. */
export const DEFAULT_UP_CONFIG: UpConfig = Object.freeze({
  dataDir: './data',
  httpPort: 8080,
  adminToken: null,
  logLevel: 'info',
  broker: DEFAULT_BROKER_CONFIG,
  http: DEFAULT_HTTP_CONFIG,
});

/** The parseArgs option table of `up`, derived from UP_SETTINGS. */
export const UP_OPTIONS = Object.freeze(
  Object.fromEntries(Object.values(UP_SETTINGS).map((s) => [s.flag, { type: s.kind === 'switch' ? ('boolean' as const) : ('string' as const) }])),
) as Readonly<Record<string, { type: 'string' | 'boolean' }>>;

/**
 * Resolves `up`'s configuration once: flags over environment over defaults. The broker's and the
 * HTTP API's settings go to their own checks; every problem found is reported in ONE
 * `invalid_config` CliError naming each setting by flag and variable. Secrets are never echoed.
 * An empty environment variable counts as unset.
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
  const raw = new Map<UpSetting, { text: string; from: 'flag' | 'env' }>();
  const values: Record<Setting['owner'], Record<string, unknown>> = { cli: {}, broker: {}, http: {} };
  for (const [key, s] of Object.entries(UP_SETTINGS) as [UpSetting, Setting][]) {
    const fromFlag = flags[s.flag];
    const fromEnv = env[s.env];
    const given = fromFlag !== undefined ? { text: String(fromFlag), from: 'flag' as const } : fromEnv !== undefined && fromEnv !== '' ? { text: fromEnv, from: 'env' as const } : undefined;
    if (given === undefined) continue;
    raw.set(key, given);
    values[s.owner][key] = valueOf(given.text, s.kind);
  }
  const problems: string[] = [];
  const report = (key: string, message: string) => problems.push(describe(key, message, raw));
  const cli = { ...DEFAULT_UP_CONFIG, ...values.cli } as Record<CliSetting, unknown>;
  if (typeof cli.dataDir !== 'string' || cli.dataDir.length === 0) report('dataDir', 'must be a non-empty path');
  if (!Number.isSafeInteger(cli.httpPort) || (cli.httpPort as number) < 0 || (cli.httpPort as number) > 65_535) report('httpPort', 'must be an integer port 0..65535 (0 = any free port)');
  if (!(LOG_LEVELS as readonly unknown[]).includes(cli.logLevel)) report('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
  const broker = checkBrokerConfig(values.broker);
  if (!broker.ok) for (const p of broker.problems) report(p.setting, p.message);
  // the enrollment proofs' audience and clock tolerance are the broker's: checked there, shared here
  const shared = broker.ok ? { audience: broker.config.audience, clockTolerance: broker.config.clockTolerance } : {};
  const http = checkHttpConfig({ ...shared, ...values.http });
  if (!http.ok) for (const p of http.problems) report(p.setting, p.message);
  if (broker.ok) for (const clash of portClashes(cli.httpPort, broker.config)) report('httpPort', clash);
  if (problems.length > 0 || !broker.ok || !http.ok) throw new CliError('invalid_config', problems.join('; '));
  const { adminToken: _checked, ...httpSettings } = http.config;
  return Object.freeze({
    dataDir: cli.dataDir as string,
    httpPort: cli.httpPort as number,
    adminToken: (values.http.adminToken as string | undefined) ?? null,
    logLevel: cli.logLevel as LogLevel,
    broker: broker.config,
    http: httpSettings,
  });
}

/** The flag's text as the owner's checks expect it: whole numbers and true/false words converted, anything else as given. */
function valueOf(text: string, kind: Setting['kind']): unknown {
  if (kind === 'number') return /^\d{1,15}$/.test(text) ? Number(text) : text;
  if (kind === 'switch') {
    const v = text.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
  }
  return text;
}

/** HTTP listens on the broker's host: its port may not be one of the broker's listeners'. */
function portClashes(httpPort: unknown, broker: BrokerConfig): string[] {
  if (httpPort === 0) return [];
  return (['mqttPort', 'mqttsPort', 'wsPort'] as const).filter((k) => broker[k] === httpPort).map((k) => `and {${k}} are both ${String(httpPort)}`);
}

/**
 * One problem as the user gave the setting: `--flag (ENV) must be …, got "…"` (`ENV (--flag)` when it
 * came from the environment); other settings the message names are named the same way.
 */
function describe(key: string, message: string, raw: ReadonlyMap<UpSetting, { text: string; from: 'flag' | 'env' }>): string {
  const s = Object.hasOwn(UP_SETTINGS, key) ? UP_SETTINGS[key as UpSetting] : undefined;
  const given = raw.get(key as UpSetting);
  const named = (k: string) => (Object.hasOwn(UP_SETTINGS, k) ? `--${UP_SETTINGS[k as UpSetting].flag} (${UP_SETTINGS[k as UpSetting].env})` : k);
  const subject = s === undefined ? key : given?.from === 'env' ? `${s.env} (--${s.flag})` : named(key);
  const text = `${subject} ${message.replace(/\{(\w+)\}/g, (_m, k: string) => named(k))}`;
  return given !== undefined && s?.echo === true && message.startsWith('must be') ? `${text}, got ${JSON.stringify(clip(given.text))}` : text;
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 60)}…` : s;
}

/** True for addresses that only this machine can reach (loopback by default). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
