import { deviceTopics, isDeviceId, type Clock } from '@latchkey/device-sdk/protocol';
import type { Registry } from '../registry/index.ts';
import type { DeviceMessagingPort } from '../http/messaging-port.ts';
import type { EventStream } from './event-stream.ts';
import { FLEET_EVENT_TYPES, type FleetEvent, type FleetEventSource, type FleetEventType } from './fleet-events.ts';

/** The event names a stream may carry: the fleet events plus the telemetry of chosen devices. */
export type StreamEventType = FleetEventType | 'telemetry';
export const STREAM_EVENT_TYPES: readonly StreamEventType[] = [...FLEET_EVENT_TYPES, 'telemetry'];

export const MAX_STREAM_DEVICES = 50;
/** Telemetry payloads are cut to this many bytes (`truncated: true`). */
export const MAX_TELEMETRY_BYTES = 4096;
/** Telemetry events per second per stream; beyond it they are counted in the next event's `skipped`. */
export const MAX_TELEMETRY_RATE = 20;

export interface FleetStreamQuery {
  /** only these devices' events (empty: the whole fleet) */
  deviceIds: readonly string[];
  types: ReadonlySet<StreamEventType>;
}

/**
 * Reads `?deviceId=a&deviceId=b&events=status,refusal,telemetry` (docs/api.md §Events). Returns
 * the query, or the reason it is refused. Telemetry needs at least one device id.
 */
export function parseFleetStreamQuery(raw: Record<string, unknown>): FleetStreamQuery | { error: string } {
  for (const k of Object.keys(raw)) if (k !== 'deviceId' && k !== 'events') return { error: `unknown parameter ${JSON.stringify(k.slice(0, 32))}` };
  const idsRaw = raw.deviceId === undefined ? [] : Array.isArray(raw.deviceId) ? raw.deviceId : [raw.deviceId];
  if (idsRaw.length > MAX_STREAM_DEVICES) return { error: `at most ${MAX_STREAM_DEVICES} deviceId parameters` };
  for (const id of idsRaw) if (typeof id !== 'string' || !isDeviceId(id)) return { error: 'deviceId must be a device id' };
  const typesRaw = raw.events === undefined ? 'status,fleet,refusal,change' : raw.events;
  if (typeof typesRaw !== 'string') return { error: 'events must be one comma-separated list' };
  const types = new Set<StreamEventType>();
  for (const t of typesRaw.split(',')) {
    if (!(STREAM_EVENT_TYPES as readonly string[]).includes(t)) return { error: `events: unknown event type ${JSON.stringify(t.slice(0, 32))}` };
    types.add(t as StreamEventType);
  }
  if (types.has('telemetry') && idsRaw.length === 0) return { error: 'telemetry needs at least one deviceId' };
  return { deviceIds: [...new Set(idsRaw as string[])], types };
}

export interface FleetStreamDeps {
  events: FleetEventSource;
  registry: Registry;
  messaging: DeviceMessagingPort | null;
  clock: Clock;
  /** adds fields to a refusal and to a status's `lastError` (the console adds the reason in plain words) */
  describeRefusal?: (reason: string) => Record<string, unknown>;
}

const SNAPSHOT_TYPES: ReadonlySet<StreamEventType> = new Set(['status', 'fleet']);

/**
 * Runs one stream until it closes: first `hello` (the connected count) and, for the chosen
 * devices, their current `status` — so a view rendered a moment earlier cannot miss a change —
 * then the live events that match the query (those that happened while the first figures were
 * read are held back and follow them).
 */
export function runFleetStream(stream: EventStream, query: FleetStreamQuery, deps: FleetStreamDeps): void {
  const ids = new Set(query.deviceIds);
  const wants = (e: FleetEvent): boolean => {
    if (!query.types.has(e.type)) return false;
    if (ids.size === 0 || e.type === 'fleet') return true;
    if (e.type === 'change') return ids.has(e.change.principal);
    return e.deviceId !== null && ids.has(e.deviceId);
  };
  const describe = deps.describeRefusal;
  const send = (e: FleetEvent): void => {
    const { type, ...data } = e;
    if (describe === undefined) stream.send(type, data);
    else if (e.type === 'refusal') stream.send(type, { ...data, ...describe(e.reason) });
    else if (e.type === 'status' && e.lastError !== null) stream.send(type, { ...data, lastError: { ...e.lastError, ...describe(e.lastError.code) } });
    else stream.send(type, data);
  };

  // subscribed before the snapshot is read, and held back until it is sent: nothing falls in between
  let held: FleetEvent[] | null = [];
  const unsubscribe = [
    deps.events.subscribe((e) => {
      if (!wants(e)) return;
      if (held === null) send(e);
      else held.push(e);
    }),
  ];
  const at = deps.clock();
  const snapshot = ids.size > 0 && [...SNAPSHOT_TYPES].some((t) => query.types.has(t));
  void Promise.all([deps.registry.stats.countConnected(), deps.registry.stats.countDevices(), snapshot ? deps.registry.stats.statusOf([...ids]) : []]).then(
    ([connected, devices, statuses]) => {
      stream.send('hello', { connected, devices, at });
      for (const s of statuses) send({ type: 'status', at, ...s });
      const later = held ?? [];
      held = null;
      for (const e of later) send(e);
    },
    // the registry could not be read (its database is down): the stream ends, the client reconnects
    () => stream.close(),
  );

  if (query.types.has('telemetry') && deps.messaging !== null) {
    const limiter = rateLimiter(MAX_TELEMETRY_RATE, deps.clock);
    for (const deviceId of ids) {
      unsubscribe.push(
        deps.messaging.subscribe(deviceTopics(deviceId).telemetryFilter, (topic, payload) => {
          const skipped = limiter();
          if (skipped === null) return;
          const truncated = payload.byteLength > MAX_TELEMETRY_BYTES;
          stream.send('telemetry', {
            deviceId,
            topic,
            payload: payload.subarray(0, MAX_TELEMETRY_BYTES).toString('utf8'),
            truncated,
            skipped,
            at: deps.clock(),
          });
        }),
      );
    }
  }
  stream.onClose(() => {
    for (const stop of unsubscribe) stop();
  });
}

/** `perSecond` passes per clock second: returns how many were refused since the last pass, or null to refuse this one. */
function rateLimiter(perSecond: number, clock: Clock): () => number | null {
  let second = -1;
  let passed = 0;
  let refused = 0;
  return () => {
    const now = Math.floor(clock() / 1000);
    if (now !== second) {
      second = now;
      passed = 0;
    }
    if (passed >= perSecond) {
      refused++;
      return null;
    }
    passed++;
    const skipped = refused;
    refused = 0;
    return skipped;
  };
}
