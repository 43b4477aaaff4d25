import { checkBrokerConfig, DEFAULT_BROKER_CONFIG, type BrokerConfig } from '@latchkey/broker';
import { checkHttpConfig, DEFAULT_HTTP_CONFIG, type HttpSettings } from '@latchkey/provisioning';
import { checkDatabaseUrl, checkRetentionPolicy, DEFAULT_RETENTION_POLICY, type RetentionPolicy } from '@latchkey/provisioning/registry';
import { CliError } from './cli-error.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What a node of `latchkey up` serves (docs/operations.md §Scaling out). */
export const ROLES = ['both', 'api', 'broker'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Configuration of `latchkey up` (docs/configuration.md). The broker's, the HTTP API's and the
 * registry's retention settings are theirs: `checkBrokerConfig`, `checkHttpConfig` and
 * `checkRetentionPolicy` are their only validators, and this module composes them from flags and
 * environment variables. Times are seconds, sizes bytes.
 */
export interface UpConfig {
  readonly dataDir: string;
  /**
   * null: the embedded SQLite registry in `<dataDir>/latchkey.db`; otherwise a `postgres://` URL
   * (docs/operations.md §PostgreSQL). It may hold a password: never logged, never echoed.
   */
  readonly databaseUrl: string | null;
  readonly httpPort: number;
  /** null: generated on first start and kept in `<dataDir>/admin-token` */
  readonly adminToken: string | null;
  readonly logLevel: LogLevel;
  /** `both` (default): HTTP API and MQTT; `api`: the HTTP API only; `broker`: MQTT, with only the operations endpoints on HTTP */
  readonly role: Role;
  /** checked by the broker's own rules (TLS material already read); `host` is also where HTTP listens */
  readonly broker: BrokerConfig;
  /** checked by the HTTP API's own rules; the admin token joins them when the stack starts */
  readonly http: HttpSettings;
  /** how much audit history the registry keeps (docs/operations.md §Retention) */
  readonly retention: RetentionPolicy;
}

/** The settings `latchkey up` itself owns. */
type CliSetting = 'dataDir' | 'databaseUrl' | 'httpPort' | 'adminToken' | 'logLevel' | 'role';
/** The broker settings `latchkey up` exposes as flags. */
type BrokerSetting = Extract<
  keyof BrokerConfig,
  | 'host'
  | 'mqttPort'
  | 'mqttsPort'
  | 'tlsCert'
  | 'tlsKey'
  | 'wsPort'
  | 'audience'
  | 'maxTokenLifetime'
  | 'clockTolerance'
  | 'requireJti'
  | 'connectTimeout'
  | 'maxPacketSize'
  | 'authFailureLimit'
  | 'trustProxy'
  | 'gcpProjects'
  | 'gcpMaxTokenLifetime'
  | 'gcpClockTolerance'
  | 'requireSignedTopics'
  | 'redisUrl'
  | 'nodeId'
  | 'heartbeatInterval'
  | 'queuedMessageTtl'
  | 'verifyThreads'
>;
export type UpSetting = CliSetting | BrokerSetting | 'httpAuthFailureLimit' | 'keyInUseMinutes' | 'auditRetention' | 'auditMaxRefusals';

type Owner = 'cli' | 'broker' | 'http' | 'retention';

interface Setting {
  flag: string;
  env: string;
  /** whose rules check the value (`trustProxy` is the broker's and the HTTP API's alike) */
  owners: readonly Owner[];
  /** the owner's name for it, when not the setting's own */
  key: string | undefined;
  /** how the flag's text becomes a value: `switch` takes true/false words, `list` comma-separated entries, `duration` 30d, 12h, 90m or seconds (in ms) */
  kind: 'text' | 'number' | 'switch' | 'list' | 'duration';
  /** the value may be echoed in an error (never for secrets) */
  echo: boolean;
}

const setting = (flag: string, owners: Owner | readonly Owner[], kind: Setting['kind'], o: { key?: string; echo?: boolean; env?: string } = {}): Setting => ({
  flag,
  env: o.env ?? `LATCHKEY_${flag.toUpperCase().replace(/-/g, '_')}`,
  owners: typeof owners === 'string' ? [owners] : owners,
  key: o.key,
  kind,
  echo: o.echo ?? true,
});

/** Flag and environment variable of every setting (docs/configuration.md). */
export const UP_SETTINGS: { readonly [K in UpSetting]: Setting } = Object.freeze({
  dataDir: setting('data-dir', 'cli', 'text'),
  // may carry a password: never echoed in an error (checkDatabaseUrl's messages never repeat it)
  databaseUrl: setting('database-url', 'cli', 'text', { echo: false }),
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
  httpAuthFailureLimit: setting('http-auth-failure-limit', 'http', 'number', { key: 'authFailureLimit' }),
  trustProxy: setting('trust-proxy', ['broker', 'http'], 'list'),
  requireSignedTopics: setting('require-signed', 'broker', 'list'),
  keyInUseMinutes: setting('key-in-use-minutes', 'http', 'number'),
  // gcp-compat: `--gcp-project <id>[,<id>…]` with the plural variable the contract names
  gcpProjects: setting('gcp-project', 'broker', 'list', { env: 'LATCHKEY_GCP_PROJECTS' }),
  gcpMaxTokenLifetime: setting('gcp-max-token-lifetime', 'broker', 'number'),
  gcpClockTolerance: setting('gcp-clock-tolerance', 'broker', 'number'),
  auditRetention: setting('audit-retention', 'retention', 'duration', { key: 'auditRetentionMs' }),
  auditMaxRefusals: setting('audit-max-refusals', 'retention', 'number', { key: 'maxRefusals' }),
  // docs/api.md §Conventions: a configured admin token must be hard to guess
  adminToken: setting('admin-token', 'http', 'text', { echo: false }),
  logLevel: setting('log-level', 'cli', 'text'),
  // a Redis URL may carry a password
  redisUrl: setting('redis-url', 'broker', 'text', { echo: false }),
  nodeId: setting('node-id', 'broker', 'text'),
  role: setting('role', 'cli', 'text'),
  heartbeatInterval: setting('heartbeat-interval', 'broker', 'number'),
  queuedMessageTtl: setting('queued-message-ttl', 'broker', 'number'),
  verifyThreads: setting('verify-threads', 'broker', 'number'),
});

/** Every default in one place: the owners' own, plus this module's five. */
export const DEFAULT_UP_CONFIG: UpConfig = Object.freeze({
  dataDir: './data',
  databaseUrl: null,
  httpPort: 8080,
  adminToken: null,
  logLevel: 'info',
  role: 'both',
  broker: DEFAULT_BROKER_CONFIG,
  http: DEFAULT_HTTP_CONFIG,
  retention: DEFAULT_RETENTION_POLICY,
});

/** The parseArgs option table of `up`, derived from UP_SETTINGS. */
export const UP_OPTIONS = Object.freeze(
  Object.fromEntries(Object.values(UP_SETTINGS).map((s) => [s.flag, { type: s.kind === 'switch' ? ('boolean' as const) : ('string' as const) }])),
) as Readonly<Record<string, { type: 'string' | 'boolean' }>>;

type Given = { text: string; from: 'flag' | 'env' };

/**
 * Resolves `up`'s configuration once: flags over environment over defaults. Each setting goes to its
 * owner's check; every problem found is reported in ONE `invalid_config` CliError naming each setting
 * by flag and variable. Secrets are never echoed. An empty environment variable counts as unset.
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
  const raw = new Map<string, Given>();
  const values: Record<Owner, Record<string, unknown>> = { cli: {}, broker: {}, http: {}, retention: {} };
  for (const [name, s] of Object.entries(UP_SETTINGS) as [UpSetting, Setting][]) {
    const fromFlag = flags[s.flag];
    const fromEnv = env[s.env];
    const given: Given | undefined = fromFlag !== undefined ? { text: String(fromFlag), from: 'flag' } : fromEnv !== undefined && fromEnv !== '' ? { text: fromEnv, from: 'env' } : undefined;
    if (given === undefined) continue;
    for (const owner of s.owners) {
      raw.set(`${owner}:${s.key ?? name}`, given);
      values[owner][s.key ?? name] = valueOf(given.text, s.kind);
    }
  }
  const problems = new Set<string>();
  const report = (owner: Owner, key: string, message: string) => problems.add(describe(owner, key, message, raw));
  const cli = { ...DEFAULT_UP_CONFIG, ...values.cli } as Record<CliSetting, unknown>;
  if (typeof cli.dataDir !== 'string' || cli.dataDir.length === 0) report('cli', 'dataDir', 'must be a non-empty path');
  if (cli.databaseUrl !== null) {
    const checked = checkDatabaseUrl(cli.databaseUrl);
    if (!checked.ok) report('cli', 'databaseUrl', checked.message);
  }
  if (!Number.isSafeInteger(cli.httpPort) || (cli.httpPort as number) < 0 || (cli.httpPort as number) > 65_535) report('cli', 'httpPort', 'must be an integer port 0..65535 (0 = any free port)');
  if (!(LOG_LEVELS as readonly unknown[]).includes(cli.logLevel)) report('cli', 'logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
  if (!(ROLES as readonly unknown[]).includes(cli.role)) report('cli', 'role', `must be one of ${ROLES.join(', ')}`);
  const broker = checkBrokerConfig(values.broker);
  if (!broker.ok) for (const p of broker.problems) report('broker', p.setting, p.message);
  // a node that serves only half needs the other half somewhere: nodes sharing Redis
  if (broker.ok && cli.role !== 'both' && broker.config.redisUrl === null) report('cli', 'role', `${String(cli.role)} requires {redisUrl}`);
  // the enrollment proofs' audience and clock tolerance are the broker's: checked there, shared here
  const shared = broker.ok ? { audience: broker.config.audience, clockTolerance: broker.config.clockTolerance } : {};
  const http = checkHttpConfig({ ...shared, ...values.http });
  if (!http.ok) for (const p of http.problems) report('http', p.setting, p.message);
  const retention = checkRetentionPolicy(values.retention);
  if (!retention.ok) for (const p of retention.problems) report('retention', p.setting, p.message);
  if (broker.ok) for (const clash of portClashes(cli.httpPort, broker.config)) report('cli', 'httpPort', clash);
  if (problems.size > 0 || !broker.ok || !http.ok || !retention.ok) throw new CliError('invalid_config', [...problems].join('; '));
  const { adminToken: _checked, ...httpSettings } = http.config;
  return Object.freeze({
    dataDir: cli.dataDir as string,
    databaseUrl: (cli.databaseUrl as string | null) ?? null,
    httpPort: cli.httpPort as number,
    adminToken: (values.http.adminToken as string | undefined) ?? null,
    logLevel: cli.logLevel as LogLevel,
    role: cli.role as Role,
    broker: broker.config,
    http: httpSettings,
    retention: retention.policy,
  });
}

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** The flag's text as the owner's checks expect it: numbers, words, lists and durations converted; anything else as given. */
function valueOf(text: string, kind: Setting['kind']): unknown {
  if (kind === 'number') return /^\d{1,15}(\.\d{1,6})?$/.test(text) ? Number(text) : text;
  if (kind === 'list') return Object.freeze(text.split(',').map((e) => e.trim()));
  if (kind === 'duration') {
    const m = /^(\d{1,9})([smhd]?)$/.exec(text);
    return m === null ? text : Number(m[1]) * DURATION_UNITS[m[2] || 's']! * 1000;
  }
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

/** The setting an owner's key stands for (another owner's, for a key that is not this owner's). */
function settingOf(owner: Owner, key: string): [UpSetting, Setting] | undefined {
  const all = Object.entries(UP_SETTINGS) as [UpSetting, Setting][];
  return all.find(([name, s]) => s.owners.includes(owner) && (s.key ?? name) === key) ?? all.find(([name, s]) => (s.key ?? name) === key);
}

/**
 * One problem as the user gave the setting: `--flag (ENV) must be …, got "…"` (`ENV (--flag)` when it
 * came from the environment); other settings the message names are named the same way.
 */
function describe(owner: Owner, key: string, message: string, raw: ReadonlyMap<string, Given>): string {
  const named = (k: string) => {
    const s = settingOf(owner, k)?.[1];
    return s === undefined ? k : `--${s.flag} (${s.env})`;
  };
  const s = settingOf(owner, key)?.[1];
  const given = raw.get(`${owner}:${key}`);
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
