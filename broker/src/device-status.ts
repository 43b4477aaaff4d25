import type { Clock } from '@latchkey/device-sdk/protocol';
import type { BrokerRegistryPort, SessionEvent } from './registry-port.ts';

/**
 * Device status in the registry (docs/api.md `status`) without a write per message or per
 * connect: session events (connected/disconnected, in order) and `lastSeenAt` are collected in
 * memory and written in batches every `flushIntervalMs` and on `close()`. The registry's
 * status may lag the broker by up to one interval; `messaging.isOnline` answers from the
 * broker's own session table, without lag, and `onEvent` sees each session event as it happens.
 *
 * @example
 * ```ts
 * const status = new DeviceStatus(registry, clock, 1000, (err) => log.error({ err }, 'status write failed'));
 * status.start();
 * status.connected('thermo-1');
 * ```
 */
export class DeviceStatus {
  readonly #registry: BrokerRegistryPort;
  readonly #clock: Clock;
  readonly #onError: (err: unknown) => void;
  readonly #flushIntervalMs: number;
  readonly #onEvent: ((event: SessionEvent) => void) | null;
  #events: SessionEvent[] = [];
  #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    registry: BrokerRegistryPort,
    clock: Clock,
    flushIntervalMs: number,
    onError: (err: unknown) => void,
    onEvent: ((event: SessionEvent) => void) | null = null,
  ) {
    this.#registry = registry;
    this.#clock = clock;
    this.#onError = onError;
    this.#flushIntervalMs = flushIntervalMs;
    this.#onEvent = onEvent;
  }

  /** Starts the periodic flush. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.flush(), this.#flushIntervalMs);
    this.#timer.unref();
  }

  connected(deviceId: string): void {
    this.#session({ deviceId, type: 'connected', at: this.#clock() });
  }

  disconnected(deviceId: string): void {
    this.#session({ deviceId, type: 'disconnected', at: this.#clock() });
  }

  /** Queued for the next flush, and seen by `onEvent` now (an observer that throws is reported, never raised into aedes). */
  #session(event: SessionEvent): void {
    this.#events.push(event);
    const onEvent = this.#onEvent;
    if (onEvent !== null) this.#write(() => onEvent(event));
  }

  /** The device sent something (publish, ping). */
  seen(deviceId: string): void {
    this.#seen.set(deviceId, this.#clock());
  }

  /** Writes what is pending: session events first (in order), then last-seen times. */
  flush(): void {
    if (this.#events.length > 0) {
      const events = this.#events;
      this.#events = [];
      this.#write(() => this.#writeEvents(events));
    }
    if (this.#seen.size > 0) {
      const seen = [...this.#seen];
      this.#seen = new Map();
      this.#write(() => this.#registry.recordSeen(seen));
    }
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.flush();
  }

  #writeEvents(events: readonly SessionEvent[]): void {
    if (typeof this.#registry.recordSessionEvents === 'function') {
      this.#registry.recordSessionEvents(events);
      return;
    }
    for (const e of events) {
      this.#write(() =>
        e.type === 'connected' ? this.#registry.recordConnected(e.deviceId, e.at) : this.#registry.recordDisconnected(e.deviceId, e.at),
      );
    }
  }

  #write(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onError(err);
    }
  }
}
