/**
 * protocol.md §Topics: the topic namespace of a device, and who may publish or subscribe where.
 * Devices are confined to `devices/{id}/…`; service accounts to the filters of their ACL;
 * `$`-topics (`$SYS/#`) are closed to everyone. protocol.md §Cloud IoT Core topics: a device connected with a
 * Cloud IoT Core client id uses `/devices/{id}/…`, mapped both ways onto the native topics.
 */
import { isDeviceId } from './ids.ts';

export interface TopicAcl {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/** A device (`dialect: 'gcp'` when it connected with a Cloud IoT Core client id), or a service account. */
export type TopicPrincipal = { kind: 'device'; deviceId: string; dialect?: 'gcp' } | { kind: 'service'; acl: TopicAcl };

const MAX_TOPIC_BYTES = 65_535; // [MQTT-1.5.3]

/**
 * The topics of one device.
 *
 * @example
 * ```ts
 * deviceTopics('thermo-1').command('setSetpoint') // 'devices/thermo-1/commands/setSetpoint'
 * ```
 */
export function deviceTopics(id: string) {
  const base = `devices/${id}`;
  return {
    telemetry: `${base}/telemetry`,
    /** the device's telemetry and every subtopic of it (what a live view subscribes to) */
    telemetryFilter: `${base}/telemetry/#`,
    state: `${base}/state`,
    config: `${base}/config`,
    commandsFilter: `${base}/commands/#`,
    /** every topic of the device */
    allFilter: `${base}/#`,
    command: (name: string) => `${base}/commands/${name}`,
    reply: (commandId: string) => `${base}/replies/${commandId}`,
  };
}

/**
 * protocol.md §Topics: the retained message on `devices/{id}/config`, as the HTTP API publishes it
 * when a config is set and the broker re-publishes it at start.
 *
 * @example
 * ```ts
 * configMessage(2, { setpoint: 21 }) // '{"version":2,"config":{"setpoint":21}}'
 * ```
 */
export function configMessage(version: number, config: unknown): string {
  return JSON.stringify({ version, config });
}

/**
 * protocol.md §Cloud IoT Core topics: the topics of one device as Cloud IoT Core firmware names them.
 *
 * @example
 * ```ts
 * gcpDeviceTopics('thermo-1').command('fw') // '/devices/thermo-1/commands/fw'
 * ```
 */
export function gcpDeviceTopics(id: string) {
  const base = `/devices/${id}`;
  return {
    events: `${base}/events`,
    state: `${base}/state`,
    config: `${base}/config`,
    commandsFilter: `${base}/commands/#`,
    /** `/devices/{id}/commands`, or `/devices/{id}/commands/{subfolder}` */
    command: (subfolder?: string) => (subfolder === undefined ? `${base}/commands` : `${base}/commands/${subfolder}`),
  };
}

/** The four families the dialects share: Cloud IoT Core level name → native level name (protocol.md §Cloud IoT Core topics). */
const NATIVE_OF_GCP: Readonly<Record<string, string>> = { events: 'telemetry', state: 'state', config: 'config', commands: 'commands' };
const GCP_OF_NATIVE: Readonly<Record<string, string>> = { telemetry: 'events', state: 'state', config: 'config', commands: 'commands' };

/** Swaps the family level of `devices/{id}/{family}[/…]` between the dialects; null for anything outside the four families. */
function remap(levels: string[], table: Readonly<Record<string, string>>, prefix: string): string | null {
  const family = levels[2];
  if (levels[0] !== 'devices' || levels.length < 3 || levels[1] === '' || family === undefined || !Object.hasOwn(table, family)) return null;
  return `${prefix}${['devices', levels[1], table[family], ...levels.slice(3)].join('/')}`;
}

/**
 * protocol.md §Cloud IoT Core topics, Cloud IoT Core → native: `/devices/{id}/events[/…]` → `devices/{id}/telemetry[/…]`,
 * and `/state`, `/config`, `/commands[/…]` to their native namesakes. Works on topic names and filters
 * alike; null for anything else. The inverse of {@link toGcpTopic}.
 *
 * @example
 * ```ts
 * toNativeTopic('/devices/thermo-1/events/alerts') // 'devices/thermo-1/telemetry/alerts'
 * ```
 */
export function toNativeTopic(gcpTopic: string): string | null {
  return gcpTopic.startsWith('/') ? remap(gcpTopic.slice(1).split('/'), NATIVE_OF_GCP, '') : null;
}

/**
 * protocol.md §Cloud IoT Core topics, native → Cloud IoT Core: the inverse of {@link toNativeTopic}.
 *
 * @example
 * ```ts
 * toGcpTopic('devices/thermo-1/commands/fw') // '/devices/thermo-1/commands/fw'
 * ```
 */
export function toGcpTopic(nativeTopic: string): string | null {
  return remap(nativeTopic.split('/'), GCP_OF_NATIVE, '/');
}

function validCommon(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && !s.includes('\u0000') && Buffer.byteLength(s) <= MAX_TOPIC_BYTES;
}

/** A topic name one may publish to: no wildcards [MQTT-3.3.2-2]. */
export function isValidTopicName(topic: unknown): topic is string {
  return validCommon(topic) && !topic.includes('+') && !topic.includes('#');
}

/** A subscription filter: `#` only alone as the last level, `+` only as a whole level [MQTT-4.7.1]. */
export function isValidTopicFilter(filter: unknown): filter is string {
  if (!validCommon(filter)) return false;
  const levels = filter.split('/');
  return levels.every((level, i) => {
    if (level.includes('#')) return level === '#' && i === levels.length - 1;
    if (level.includes('+')) return level === '+';
    return true;
  });
}

/** Does `filter` match the topic name `topic`? [MQTT-4.7] (wildcards never match a leading `$`). */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false; // [MQTT-4.7.2-1]
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true; // also matches the parent level [MQTT-4.7.1-2]
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Is every topic `filter` can match also matched by `allowed`? (a subscription inside an ACL filter) */
export function filterWithin(filter: string, allowed: string): boolean {
  const f = filter.split('/');
  const a = allowed.split('/');
  for (let i = 0; i < f.length; i++) {
    const al = a[i];
    const fl = f[i];
    if (al === '#') return true;
    if (al === undefined) return false;
    if (fl === '#') return false; // `#` reaches further than any non-`#` level
    if (al === '+') continue; // `+` covers one whole level, `+` included
    if (fl !== al) return false; // a literal covers only itself, never `+`
  }
  // filter ended: it is within only if allowed ends too, or continues with exactly `/#` (parent level)
  return a.length === f.length || (a.length === f.length + 1 && a[f.length] === '#');
}

/**
 * Can some topic name match both filters? [MQTT-4.7] level by level: `#` matches the rest (and the
 * parent level), `+` any one level, literals only themselves.
 *
 * @example
 * ```ts
 * filtersOverlap('devices/+/telemetry/#', 'devices/thermo-1/#') // true
 * filtersOverlap('devices/+/state', 'devices/thermo-1/telemetry/#') // false
 * ```
 */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    const l = x[i];
    const r = y[i];
    if (l === '#' || r === '#') return true;
    if (l === undefined || r === undefined) return l === r;
    if (l !== '+' && r !== '+' && l !== r) return false;
  }
}

const isDollar = (s: string) => s.startsWith('$');

/**
 * May `p` publish to `topic`? Devices: their own telemetry, state and replies; services: their ACL.
 * A Cloud IoT Core device: its own `/devices/{id}/events[/…]` and `/devices/{id}/state`, judged by the
 * native rule for the topic they map to (protocol.md §Cloud IoT Core topics).
 */
export function canPublish(p: TopicPrincipal, topic: string): boolean {
  if (!isValidTopicName(topic) || isDollar(topic)) return false;
  if (p.kind === 'service') return p.acl.publish.some((f) => topicMatches(f, topic));
  if (p.dialect === 'gcp') {
    const native = toNativeTopic(topic);
    const family = native?.split('/')[2];
    return native !== null && (family === 'telemetry' || family === 'state') && canPublish({ kind: 'device', deviceId: p.deviceId }, native);
  }
  const levels = topic.split('/');
  if (levels[0] !== 'devices' || levels[1] !== p.deviceId) return false;
  const kind = levels[2];
  if (kind === 'telemetry') return levels.slice(3).every((l) => l.length > 0);
  if (kind === 'state') return levels.length === 3;
  if (kind === 'replies') return levels.length === 4 && (levels[3]?.length ?? 0) > 0;
  return false;
}

/**
 * The device a device → cloud topic belongs to (`devices/{id}/telemetry[/…]`, `…/state`,
 * `…/replies/{commandId}`), or null for any other topic: the topics a device may publish to, and so
 * the only ones a signed message can be for (protocol.md §Signed messages).
 *
 * @example
 * ```ts
 * deviceOfPublishTopic('devices/thermo-1/telemetry/hall') // 'thermo-1'
 * deviceOfPublishTopic('devices/thermo-1/commands/reboot') // null
 * ```
 */
export function deviceOfPublishTopic(topic: string): string | null {
  if (typeof topic !== 'string' || !topic.startsWith('devices/')) return null;
  const end = topic.indexOf('/', 8);
  const id = end < 0 ? '' : topic.slice(8, end);
  return isDeviceId(id) && canPublish({ kind: 'device', deviceId: id }, topic) ? id : null;
}

/**
 * May `p` subscribe to `filter`? Devices: inside `devices/{id}/commands/#`, or `devices/{id}/config`.
 * A Cloud IoT Core device: exactly `/devices/{id}/config` or `/devices/{id}/commands/#`, the only
 * forms Cloud IoT Core allowed (protocol.md §Cloud IoT Core topics).
 */
export function canSubscribe(p: TopicPrincipal, filter: string): boolean {
  if (!isValidTopicFilter(filter) || isDollar(filter)) return false;
  if (p.kind === 'service') return p.acl.subscribe.some((a) => !isDollar(a) && filterWithin(filter, a));
  if (p.dialect === 'gcp') {
    const g = gcpDeviceTopics(p.deviceId);
    return filter === g.config || filter === g.commandsFilter;
  }
  const t = deviceTopics(p.deviceId);
  return filter === t.config || filterWithin(filter, t.commandsFilter);
}

/**
 * May `topic` be delivered to `p` (the broker's check on every outgoing message)? What `p` may
 * subscribe to; for a Cloud IoT Core device, its config and any command under its `/commands/#`.
 */
export function canReceive(p: TopicPrincipal, topic: string): boolean {
  if (p.kind === 'device' && p.dialect === 'gcp') {
    const g = gcpDeviceTopics(p.deviceId);
    return isValidTopicName(topic) && (topic === g.config || topicMatches(g.commandsFilter, topic));
  }
  return canSubscribe(p, topic);
}
