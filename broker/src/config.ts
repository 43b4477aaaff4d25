import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import {
  DEFAULT_GCP_TOKEN_RULES,
  DEFAULT_LIMITS,
  DEFAULT_TOKEN_RULES,
  isAudience,
  isGcpProject,
  isValidTopicFilter,
  isProxyRange,
  MAX_AUDIENCE_LENGTH,
  MAX_MQTT_PACKET_SIZE,
  MIN_PACKET_SIZE,
  PROXY_RANGE_RULE,
} from '@latchkey/device-sdk/protocol';

/**
 * Broker configuration (docs/configuration.md; protocol.md §Limits). Times are seconds, sizes bytes.
 * `tlsCert`/`tlsKey` are PEM text or a path to a PEM file (text containing `-----BEGIN` is PEM).
 * The rules below are the only ones: `latchkey up` hands its flags here and reports what this finds.
 */
export interface BrokerConfig {
  /** Interface to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  readonly host: string;
  /** Plain MQTT port (0 = any free port). */
  readonly mqttPort: number;
  /** MQTT over TLS port; requires `tlsCert` and `tlsKey`. */
  readonly mqttsPort: number | null;
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  /** MQTT over WebSocket port (any path, subprotocol `mqtt`). */
  readonly wsPort: number | null;
  readonly audience: string;
  readonly maxTokenLifetime: number;
  readonly clockTolerance: number;
  readonly requireJti: boolean;
  /** Seconds from TCP accept to a complete CONNECT (protocol.md §Limits). */
  readonly connectTimeout: number;
  /** Largest MQTT packet in bytes, fixed header included (protocol.md §Limits). */
  readonly maxPacketSize: number;
  /** Refused connects per source address per minute before CONNACK 5 (0 = off). */
  readonly authFailureLimit: number;
  /** QoS 1 messages queued per offline persistent session (protocol.md §Limits). */
  readonly maxQueuedMessages: number;
  /** Principals whose KeyObjects stay cached (LRU: a KeyObject costs ~3.4 KB). */
  readonly credentialCacheSize: number;
  /**
   * Tokens already verified whose reconnects skip the signature check (LRU, ~0.5 KB each; 0 = off;
   * never used with `requireJti`). docs/operations.md §Reconnect storms.
   */
  readonly verifiedTokenCacheSize: number;
  /**
   * Threads that check connect-token signatures off the main thread (issue 12; docs/operations.md
   * §Verify threads); 0: on the main thread. Default: the cores − 1, when there are more than one.
   */
  readonly verifyThreads: number;
  /** Distinct source addresses tracked by the failure throttle (oldest forgotten first). */
  readonly throttleTableSize: number;
  /** Used `jti`s remembered until they expire; when full of live entries, connects get CONNACK 3. */
  readonly jtiCacheSize: number;
  /** Seconds between batched device-status writes (session events, `lastSeenAt`). */
  readonly statusFlushInterval: number;
  /**
   * Proxies that name the client (addresses, CIDR ranges, `loopback`, `linklocal`, `uniquelocal`):
   * their X-Forwarded-For on the WebSocket listener, their PROXY protocol header on TCP and TLS;
   * empty: the peer is the client.
   */
  readonly trustProxy: readonly string[];
  /**
   * Cloud IoT Core compatibility (protocol.md §Cloud IoT Core compatibility): the Google Cloud project
   * ids whose client ids and tokens are accepted; empty: off.
   */
  readonly gcpProjects: readonly string[];
  /** Largest `exp − iat` of a Cloud IoT Core token, seconds. */
  readonly gcpMaxTokenLifetime: number;
  /** Clock skew for Cloud IoT Core tokens, seconds; their sessions end at `exp` + this. */
  readonly gcpClockTolerance: number;
  /**
   * Topic filters whose device → cloud topics need device-signed messages
   * (protocol.md §Signed messages at the broker), e.g. `devices/+/telemetry/#`; `#` for every device → cloud topic.
   * Empty: none.
   */
  readonly requireSignedTopics: readonly string[];
  /**
   * `redis://` or `rediss://` URL of the Redis several broker nodes share (sessions, queued
   * messages, retained messages, wills, routing, presence; docs/operations.md §Scaling out); null:
   * one process, in memory. May carry a password: never echoed or logged.
   */
  readonly redisUrl: string | null;
  /** This node's name in a cluster, `[A-Za-z0-9_-]{1,32}`; null: generated, unique per process start. */
  readonly nodeId: string | null;
  /** Seconds between a cluster node's aedes heartbeats and its looks for dead nodes (whose devices' wills it then publishes). */
  readonly heartbeatInterval: number;
  /** Seconds a queued QoS 1 message for an offline session is kept in Redis (7 days). */
  readonly queuedMessageTtl: number;
}

export type BrokerConfigInput = Partial<BrokerConfig>;

/**
 * One problem with one setting. `message` reads after the setting's name ("must be …", "requires …")
 * and names other settings as `{key}`, so each caller can print them its own way (the CLI as flags).
 */
export interface ConfigProblem {
  readonly setting: string;
  readonly message: string;
}

/** docs/operations.md §Verify threads: one core stays the main thread's; one core alone verifies inline. */
export const MAX_VERIFY_THREADS = 256;
const DEFAULT_VERIFY_THREADS = Math.min(MAX_VERIFY_THREADS, Math.max(0, availableParallelism() - 1));

/** One place for every default. */
export const DEFAULT_BROKER_CONFIG: BrokerConfig = Object.freeze({
  host: '127.0.0.1', // nothing listens beyond loopback unless asked
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
  maxQueuedMessages: DEFAULT_LIMITS.maxQueuedMessages,
  credentialCacheSize: 2048,
  verifiedTokenCacheSize: 50_000,
  verifyThreads: DEFAULT_VERIFY_THREADS,
  throttleTableSize: 100_000,
  jtiCacheSize: 200_000,
  statusFlushInterval: 1,
  trustProxy: Object.freeze([]) as readonly string[],
  gcpProjects: Object.freeze([]) as readonly string[],
  gcpMaxTokenLifetime: DEFAULT_GCP_TOKEN_RULES.maxTokenLifetime,
  gcpClockTolerance: DEFAULT_GCP_TOKEN_RULES.clockTolerance,
  requireSignedTopics: Object.freeze([]) as readonly string[],
  redisUrl: null,
  nodeId: null,
  heartbeatInterval: 2,
  queuedMessageTtl: 604_800,
});

/** A cluster node's name (docs/configuration.md `--node-id`): no `:`, which Redis key names use as a separator. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

type Check = (v: unknown) => boolean;
const int = (min: number, max: number): Check => (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const port = int(0, 65_535);
const optPort: Check = (v) => v === null || port(v);
const posInt = int(1, Number.MAX_SAFE_INTEGER);
const nonNegInt = int(0, Number.MAX_SAFE_INTEGER);
const seconds = (max: number): Check => (v) => typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= max;
const positive: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const optText: Check = (v) => v === null || (typeof v === 'string' && v.length > 0);
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$/;
const host: Check = (v) => typeof v === 'string' && (isIP(v) !== 0 || HOST_NAME.test(v));
const proxyList: Check = (v) => Array.isArray(v) && v.every(isProxyRange);
const projectList: Check = (v) => Array.isArray(v) && v.every(isGcpProject) && new Set(v).size === v.length;
const MAX_SIGNED_FILTERS = 100;
const topicFilters: Check = (v) => Array.isArray(v) && v.length <= MAX_SIGNED_FILTERS && v.every((f) => isValidTopicFilter(f) && !f.startsWith('$'));
const redisUrl: Check = (v) => {
  if (v === null) return true;
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname.length > 0;
  } catch {
    return false;
  }
};

const RULES: { [K in keyof BrokerConfig]: [Check, string] } = {
  host: [host, 'an IP address or host name'],
  mqttPort: [port, 'an integer port 0..65535 (0 = any free port)'],
  mqttsPort: [optPort, 'an integer port 0..65535 (0 = any free port)'],
  tlsCert: [optText, 'PEM text or a PEM file'],
  tlsKey: [optText, 'PEM text or a PEM file'],
  wsPort: [optPort, 'an integer port 0..65535 (0 = any free port)'],
  audience: [isAudience, `1 to ${MAX_AUDIENCE_LENGTH} characters`],
  maxTokenLifetime: [int(1, 31_536_000), 'an integer number of seconds, 1..31536000'],
  clockTolerance: [int(0, 86_400), 'an integer number of seconds, 0..86400'],
  requireJti: [(v) => typeof v === 'boolean', 'true or false'],
  connectTimeout: [seconds(3600), 'a number of seconds, more than 0 and at most 3600'],
  // a CONNECT carries a token of up to 4096 bytes: MIN_PACKET_SIZE is the protocol core's reason
  maxPacketSize: [int(MIN_PACKET_SIZE, MAX_MQTT_PACKET_SIZE), `an integer number of bytes, ${MIN_PACKET_SIZE}..${MAX_MQTT_PACKET_SIZE} (a CONNECT carries a token of up to 4096 bytes)`],
  authFailureLimit: [int(0, 1_000_000), 'an integer 0..1000000 (0 = off)'],
  maxQueuedMessages: [nonNegInt, 'a non-negative integer'],
  credentialCacheSize: [posInt, 'a positive integer'],
  verifiedTokenCacheSize: [nonNegInt, 'a non-negative integer (0 = off)'],
  verifyThreads: [int(0, MAX_VERIFY_THREADS), `an integer 0..${MAX_VERIFY_THREADS} (0 = verify on the main thread)`],
  throttleTableSize: [posInt, 'a positive integer'],
  jtiCacheSize: [posInt, 'a positive integer'],
  statusFlushInterval: [positive, 'a positive number (seconds)'],
  trustProxy: [proxyList, PROXY_RANGE_RULE],
  gcpProjects: [projectList, 'a list of distinct Google Cloud project ids (6 to 30 lowercase letters, digits and hyphens, starting with a letter)'],
  gcpMaxTokenLifetime: [int(1, 31_536_000), 'an integer number of seconds, 1..31536000'],
  gcpClockTolerance: [int(0, 86_400), 'an integer number of seconds, 0..86400'],
  requireSignedTopics: [topicFilters, `a list of at most ${MAX_SIGNED_FILTERS} MQTT topic filters (e.g. devices/+/telemetry/#), none starting with $`],
  redisUrl: [redisUrl, 'a redis:// or rediss:// URL'],
  nodeId: [(v) => v === null || (typeof v === 'string' && NODE_ID_PATTERN.test(v)), '1 to 32 letters, digits, _ or -'],
  heartbeatInterval: [(v) => typeof v === 'number' && Number.isFinite(v) && v >= 0.1 && v <= 60, 'a number of seconds, 0.1..60'],
  queuedMessageTtl: [int(1, 31_536_000), 'an integer number of seconds, 1..31536000'],
};

const LISTENER_PORTS = ['mqttPort', 'mqttsPort', 'wsPort'] as const;

/**
 * Merges `input` over the defaults and checks every setting once; TLS material given as a path is
 * read here, so a missing file fails at start, not at listen. Returns the frozen config, or every
 * problem found.
 *
 * @example
 * ```ts
 * const checked = checkBrokerConfig({ mqttPort: 0, maxPacketSize: 64 }); // { ok: false, problems: [{ setting: 'maxPacketSize', … }] }
 * ```
 */
export function checkBrokerConfig(input: BrokerConfigInput = {}): { ok: true; config: BrokerConfig } | { ok: false; problems: ConfigProblem[] } {
  if (input === null || typeof input !== 'object') throw new TypeError('broker config must be an object');
  const problems: ConfigProblem[] = [];
  for (const key of Object.keys(input)) {
    if (!(key in RULES)) problems.push({ setting: key, message: 'is not a broker setting' });
  }
  const merged: Record<string, unknown> = { ...DEFAULT_BROKER_CONFIG };
  for (const [key, value] of Object.entries(input)) if (value !== undefined) merged[key] = value;
  for (const [key, [check, expected]] of Object.entries(RULES)) {
    if (!check(merged[key])) problems.push({ setting: key, message: `must be ${expected}` });
  }
  problems.push(...relations(merged as unknown as BrokerConfig));
  if (problems.length === 0 && merged.mqttsPort !== null) {
    for (const key of ['tlsCert', 'tlsKey'] as const) {
      try {
        merged[key] = loadPem(merged[key] as string);
      } catch {
        problems.push({ setting: key, message: 'must be PEM text or a readable PEM file' });
      }
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config: Object.freeze(merged) as unknown as BrokerConfig };
}

/** Rules between settings: TLS material goes with a TLS listener, and no two listeners share a port. */
function relations(c: BrokerConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (c.mqttsPort !== null && (c.tlsCert === null || c.tlsKey === null)) out.push({ setting: 'mqttsPort', message: 'requires {tlsCert} and {tlsKey}' });
  if (c.mqttsPort === null) {
    for (const key of ['tlsCert', 'tlsKey'] as const) if (c[key] !== null) out.push({ setting: key, message: 'is set but {mqttsPort} is not' });
  }
  const used = new Map<unknown, string>();
  for (const key of LISTENER_PORTS) {
    const p = c[key];
    if (p === null || p === 0 || !port(p)) continue;
    const other = used.get(p);
    if (other !== undefined) out.push({ setting: key, message: `and {${other}} are both ${p}` });
    else used.set(p, key);
  }
  return out;
}

/**
 * {@link checkBrokerConfig}, throwing one `TypeError` that names every bad setting.
 *
 * @example
 * ```ts
 * const config = resolveBrokerConfig({ host: '127.0.0.1', mqttPort: 0 });
 * ```
 */
export function resolveBrokerConfig(input: BrokerConfigInput = {}): BrokerConfig {
  const checked = checkBrokerConfig(input);
  if (checked.ok) return checked.config;
  const text = checked.problems.map((p) => `${p.setting}: ${p.message.replace(/\{(\w+)\}/g, '$1')}`);
  throw new TypeError(`invalid broker config: ${text.join('; ')}`);
}

function loadPem(value: string): string {
  return value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8');
}
