import { readFileSync } from 'node:fs';
import { DEFAULT_LIMITS, DEFAULT_TOKEN_RULES } from '@latchkey/device-sdk/protocol';
import { trustedProxies } from './listeners/forwarded-for.ts';

/**
 * Broker configuration (cli.md; protocol.md §Limits). Times are seconds, sizes bytes.
 * `tlsCert`/`tlsKey` are PEM text or a path to a PEM file (text containing `-----BEGIN` is PEM).
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
  /** Principals whose KeyObjects stay cached (LRU; design.md: bound the key cache). */
  readonly credentialCacheSize: number;
  /** Distinct source addresses tracked by the failure throttle (oldest forgotten first). */
  readonly throttleTableSize: number;
  /** Used `jti`s remembered until they expire; when full of live entries, connects get CONNACK 3. */
  readonly jtiCacheSize: number;
  /** Seconds between batched device-status writes (session events, `lastSeenAt`). */
  readonly statusFlushInterval: number;
  /**
   * Proxies in front of the WebSocket listener whose X-Forwarded-For names the client (addresses,
   * CIDR ranges, `loopback`, `linklocal`, `uniquelocal`); empty: the peer is the client.
   */
  readonly trustProxy: readonly string[];
}

export type BrokerConfigInput = Partial<BrokerConfig>;

/** One place for every default (design.md style #6). */
export const DEFAULT_BROKER_CONFIG: BrokerConfig = Object.freeze({
  host: '127.0.0.1', // cli.md: nothing listens beyond loopback unless asked
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
  throttleTableSize: 100_000,
  jtiCacheSize: 200_000,
  statusFlushInterval: 1,
  trustProxy: Object.freeze([]) as readonly string[],
});

/** MQTT caps a packet's remaining length at 268,435,455 bytes [MQTT-2.2.3]. */
const MQTT_MAX_PACKET = 268_435_455 + 5;

type Check = (v: unknown) => boolean;
const port: Check = (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65_535;
const optPort: Check = (v) => v === null || port(v);
const posInt: Check = (v) => Number.isInteger(v) && (v as number) > 0;
const nonNegInt: Check = (v) => Number.isInteger(v) && (v as number) >= 0;
const positive: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const text: Check = (v) => typeof v === 'string' && v.length > 0;
const optText: Check = (v) => v === null || text(v);
const proxyList: Check = (v) => {
  if (!Array.isArray(v) || !v.every((e) => typeof e === 'string')) return false;
  try {
    trustedProxies(v as string[]);
    return true;
  } catch {
    return false;
  }
};

const RULES: { [K in keyof BrokerConfig]: [Check, string] } = {
  host: [text, 'a non-empty string'],
  mqttPort: [port, 'an integer port 0..65535'],
  mqttsPort: [optPort, 'null or an integer port 0..65535'],
  tlsCert: [optText, 'null, PEM text or a file path'],
  tlsKey: [optText, 'null, PEM text or a file path'],
  wsPort: [optPort, 'null or an integer port 0..65535'],
  audience: [text, 'a non-empty string'],
  maxTokenLifetime: [posInt, 'a positive integer (seconds)'],
  clockTolerance: [nonNegInt, 'a non-negative integer (seconds)'],
  requireJti: [(v) => typeof v === 'boolean', 'a boolean'],
  connectTimeout: [positive, 'a positive number (seconds)'],
  maxPacketSize: [(v) => Number.isInteger(v) && (v as number) >= 64 && (v as number) <= MQTT_MAX_PACKET, 'an integer >= 64 (bytes)'],
  authFailureLimit: [nonNegInt, 'a non-negative integer (0 = off)'],
  maxQueuedMessages: [nonNegInt, 'a non-negative integer'],
  credentialCacheSize: [posInt, 'a positive integer'],
  throttleTableSize: [posInt, 'a positive integer'],
  jtiCacheSize: [posInt, 'a positive integer'],
  statusFlushInterval: [positive, 'a positive number (seconds)'],
  trustProxy: [proxyList, 'a list of IP addresses, CIDR ranges, loopback, linklocal or uniquelocal'],
};

/**
 * Merges `input` over the defaults, validates every setting once and returns a frozen config.
 * TLS material given as a path is read here, so a missing file fails at start, not at listen.
 * Throws one `TypeError` naming every bad setting.
 *
 * @example
 * ```ts
 * const config = resolveBrokerConfig({ host: '127.0.0.1', mqttPort: 0 });
 * ```
 */
export function resolveBrokerConfig(input: BrokerConfigInput = {}): BrokerConfig {
  if (input === null || typeof input !== 'object') throw new TypeError('broker config must be an object');
  const problems: string[] = [];
  for (const key of Object.keys(input)) {
    if (!(key in RULES)) problems.push(`${key}: unknown setting`);
  }
  const merged: Record<string, unknown> = { ...DEFAULT_BROKER_CONFIG };
  for (const [key, value] of Object.entries(input)) if (value !== undefined) merged[key] = value;
  for (const [key, [check, expected]] of Object.entries(RULES)) {
    if (!check(merged[key])) problems.push(`${key}: must be ${expected}`);
  }
  if (merged.mqttsPort !== null && (merged.tlsCert === null || merged.tlsKey === null)) {
    problems.push('mqttsPort: requires tlsCert and tlsKey');
  }
  if (problems.length === 0 && merged.mqttsPort !== null) {
    for (const key of ['tlsCert', 'tlsKey'] as const) {
      try {
        merged[key] = loadPem(merged[key] as string);
      } catch {
        problems.push(`${key}: cannot read the PEM file`);
      }
    }
  }
  if (problems.length > 0) throw new TypeError(`invalid broker config: ${problems.join('; ')}`);
  return Object.freeze(merged) as unknown as BrokerConfig;
}

function loadPem(value: string): string {
  return value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8');
}
