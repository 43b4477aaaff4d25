/**
 * protocol.md §Topics: the topic namespace of a device, and who may publish or subscribe where.
 * Devices are confined to `devices/{id}/…`; service accounts to the filters of their ACL;
 * `$`-topics (`$SYS/#`) are closed to everyone.
 */

export interface TopicAcl {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

export type TopicPrincipal = { kind: 'device'; deviceId: string } | { kind: 'service'; acl: TopicAcl };

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

const isDollar = (s: string) => s.startsWith('$');

/** May `p` publish to `topic`? Devices: their own telemetry, state and replies; services: their ACL. */
export function canPublish(p: TopicPrincipal, topic: string): boolean {
  if (!isValidTopicName(topic) || isDollar(topic)) return false;
  if (p.kind === 'service') return p.acl.publish.some((f) => topicMatches(f, topic));
  const levels = topic.split('/');
  if (levels[0] !== 'devices' || levels[1] !== p.deviceId) return false;
  const kind = levels[2];
  if (kind === 'telemetry') return levels.slice(3).every((l) => l.length > 0);
  if (kind === 'state') return levels.length === 3;
  if (kind === 'replies') return levels.length === 4 && (levels[3]?.length ?? 0) > 0;
  return false;
}

/** May `p` subscribe to `filter`? Devices: inside `devices/{id}/commands/#`, or `devices/{id}/config`. */
export function canSubscribe(p: TopicPrincipal, filter: string): boolean {
  if (!isValidTopicFilter(filter) || isDollar(filter)) return false;
  if (p.kind === 'service') return p.acl.subscribe.some((a) => !isDollar(a) && filterWithin(filter, a));
  const t = deviceTopics(p.deviceId);
  return filter === t.config || filterWithin(filter, t.commandsFilter);
}
