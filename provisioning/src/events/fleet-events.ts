import { isDeviceId, type Clock } from '@latchkey/device-sdk/protocol';
import type { DeviceStatusSnapshot, Registry, RegistryChange } from '../registry/index.ts';

/**
 * A refused connect as the audit log records it (docs/operations.md §Retention): one refusal
 * (`count` 1), or a summary of `count` repeated refusals since `since`, by reason in `reasons`
 * (then `reason` and `at` are the last one's).
 */
export interface RefusalEvent {
  type: 'refusal';
  principal: string | null;
  deviceId: string | null;
  reason: string;
  remoteAddress: string | null;
  at: number;
  count: number;
  reasons?: Readonly<Record<string, number>>;
  since?: number;
}

/**
 * What happens in the fleet, as it is recorded: a device's status (sessions, times, its last
 * refusal), the connected count, a refused connect, a registry change (block, delete, keys).
 * Times are epoch ms. Never a token or a key.
 */
export type FleetEvent =
  | ({ type: 'status'; at: number } & DeviceStatusSnapshot)
  | { type: 'fleet'; connected: number; at: number }
  | RefusalEvent
  | { type: 'change'; change: RegistryChange; at: number };

export type FleetEventType = FleetEvent['type'];
export const FLEET_EVENT_TYPES: readonly FleetEventType[] = ['status', 'fleet', 'refusal', 'change'];

/** Where live views subscribe (the console, `GET /v1/events`). */
export interface FleetEventSource {
  /** Adds a listener; returns its unsubscribe function. */
  subscribe(listener: (event: FleetEvent) => void): () => void;
}

/**
 * An in-process hub of fleet events. A listener that throws is reported and does not stop the
 * others. With no listener, the observers below skip the extra reads entirely.
 */
export class FleetEvents implements FleetEventSource {
  readonly #listeners = new Set<(event: FleetEvent) => void>();
  readonly #onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  get listening(): boolean {
    return this.#listeners.size > 0;
  }

  subscribe(listener: (event: FleetEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const entry = (e: FleetEvent): void => listener(e);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(event: FleetEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }
}

/** The registry methods the broker calls (broker/src/registry-port.ts, restated: provisioning never imports the broker). */
export type BrokerFacingRegistry = Pick<
  Registry,
  | 'findPrincipal'
  | 'onChange'
  | 'recordConnected'
  | 'recordDisconnected'
  | 'recordSessionEvents'
  | 'recordSeen'
  | 'recordCredentialUses'
  | 'recordAuthFailure'
  | 'recordLastErrors'
  | 'saveState'
  | 'deviceIdOfNumId'
  | 'findGcpConfig'
  | 'recordConfigAck'
  | 'allConfigs'
  | 'feed'
>;

/** A device session opened or closed at `at` (the broker's `SessionEvent`, restated like the port). */
export interface LiveSessionEvent {
  deviceId: string;
  type: 'connected' | 'disconnected';
  at: number;
}

/**
 * Feeds `events` from what the broker and the registry already produce, without either knowing:
 * the composition root hands the broker `brokerRegistry` (the same registry, each status write
 * and refusal also published once it is stored) and `onSessionEvent` (each session opening and
 * closing as it happens, before the batched status write), and the registry change feed is
 * forwarded.
 *
 * A session event is published at once as the device's status: the registry's, with this event
 * applied the way the next status write will apply it (sessions counted, so a takeover's late
 * disconnect leaves it connected), and the connected count. After the write, the status as
 * stored follows (the same, unless a write failed). Create it before the broker starts: it
 * counts live sessions from the broker's first event on.
 *
 * @example
 * ```ts
 * const events = new FleetEvents();
 * const observed = observeRegistry(registry, events, clock);
 * const broker = createBroker({ registry: observed.brokerRegistry, onSessionEvent: observed.onSessionEvent, ... });
 * ```
 */
export function observeRegistry(
  registry: Registry,
  events: FleetEvents,
  clock: Clock,
  onError: (err: unknown) => void = () => {},
): { brokerRegistry: BrokerFacingRegistry; onSessionEvent(event: LiveSessionEvent): void; close(): void } {
  /** live sessions per device, as the broker reports them (only devices with at least one) */
  const live = new Map<string, number>();
  const onSessionEvent = (e: LiveSessionEvent): void => {
    const sessions = Math.max((live.get(e.deviceId) ?? 0) + (e.type === 'connected' ? 1 : -1), 0);
    if (sessions === 0) live.delete(e.deviceId);
    else live.set(e.deviceId, sessions);
    if (!events.listening) return;
    const connected = live.size;
    registry.stats.statusOf([e.deviceId]).then(([stored]) => {
      if (stored === undefined) return; // not a registered device (deleted meanwhile)
      const at = clock();
      const applied: DeviceStatusSnapshot =
        e.type === 'connected'
          ? { ...stored, connected: true, lastConnectedAt: e.at, lastSeenAt: Math.max(stored.lastSeenAt ?? 0, e.at) }
          : { ...stored, connected: sessions > 0, lastDisconnectedAt: e.at };
      events.emit({ type: 'status', at, ...applied });
      events.emit({ type: 'fleet', connected, at });
    }, onError);
  };
  /** The stored status of each device (and the connected count), read after a write; a failed read is reported, never rejected. */
  const publishStatus = async (deviceIds: Iterable<string>, withCount = true): Promise<void> => {
    if (!events.listening) return;
    try {
      const ids = [...new Set(deviceIds)];
      const statuses = await registry.stats.statusOf(ids);
      const connected = withCount ? await registry.stats.countConnected() : 0;
      const at = clock();
      for (const s of statuses) events.emit({ type: 'status', at, ...s });
      if (withCount) events.emit({ type: 'fleet', connected, at });
    } catch (err) {
      onError(err);
    }
  };
  const stopFeed = registry.onChange((change) => {
    // registrations are not streamed: a batch of 10,000 would be 10,000 events for every reader
    // (the broker needs them for its unknown-id cache, docs/operations.md §What a prober learns)
    if (!events.listening || change.type === 'principal_created') return;
    events.emit({ type: 'change', change, at: clock() });
    if (change.type === 'principal_blocked' || change.type === 'principal_unblocked') void publishStatus([change.principal]);
  });
  const brokerRegistry: BrokerFacingRegistry = {
    findPrincipal: (principal) => registry.findPrincipal(principal),
    onChange: (listener) => registry.onChange(listener),
    async recordConnected(deviceId, at) {
      await registry.recordConnected(deviceId, at);
      await publishStatus([deviceId]);
    },
    async recordDisconnected(deviceId, at) {
      await registry.recordDisconnected(deviceId, at);
      await publishStatus([deviceId]);
    },
    async recordSessionEvents(batch) {
      await registry.recordSessionEvents(batch);
      await publishStatus(batch.map((e) => e.deviceId));
    },
    recordSeen: (entries) => registry.recordSeen(entries),
    recordCredentialUses: (uses) => registry.recordCredentialUses(uses),
    async recordAuthFailure(failure) {
      await registry.recordAuthFailure(failure);
      if (!events.listening) return;
      const p = failure.principal;
      const r = failure.repeated;
      events.emit({
        type: 'refusal',
        principal: p,
        deviceId: isDeviceId(p) ? p : null,
        reason: failure.reason,
        remoteAddress: failure.remoteAddress,
        at: failure.at,
        count: r?.count ?? 1,
        ...(r !== undefined ? { reasons: r.reasons, since: r.since } : {}),
      });
    },
    async recordLastErrors(entries) {
      await registry.recordLastErrors(entries);
      await publishStatus(entries.map(([deviceId]) => deviceId), false); // each device's status with its last refusal
    },
    saveState: (deviceId, stateJson, at) => registry.saveState(deviceId, stateJson, at),
    // Cloud IoT Core compatibility: passed through (nothing here for the live views)
    deviceIdOfNumId: (numId) => registry.deviceIdOfNumId(numId),
    findGcpConfig: (deviceId) => registry.findGcpConfig(deviceId),
    recordConfigAck: (deviceId, version, at) => registry.recordConfigAck(deviceId, version, at),
    allConfigs: (after, limit) => registry.allConfigs(after, limit),
    feed: registry.feed,
  };
  return { brokerRegistry, onSessionEvent, close: stopFeed };
}
