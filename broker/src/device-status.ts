import type { Clock } from '@latchkey/device-sdk/protocol';
import type { BrokerRegistryPort, SessionEvent } from './registry-port.ts';

/**
 * Device status in the registry (docs/api.md `status`) without a write per message or per
 * connect: session events (connected/disconnected, in order) and `lastSeenAt` are collected in
 * memory and written in batches every `flushIntervalMs` and on `close()`. The registry's
 * status may lag the broker by up to one interval; `messaging.isOnline` answers from the
 * broker's own session table, without lag, and `onEvent` sees each session event as it happens.
 * Writes are chained: a flush starts after the previous one finished, so batches reach the
 * registry in order and never overlap (a slow database makes the next batch larger, not concurrent).
 *
 * @example
 * ```ts
 * const status = new DeviceStatus(registry, clock, 1000, (err) => log.error({ err }, 'status write failed'));
 * status.start();
 * status.connected('thermo-1');
 * ```
 */
export class DeviceStatus {
  readonly #registry: Pick<BrokerRegistryPort, 'recordSessionEvents' | 'recordSeen'>;
  readonly #clock: Clock;
  readonly #onError: (err: unknown) => void;
  readonly #flushIntervalMs: number;
  readonly #onEvent: ((event: SessionEvent) => void) | null;
  #events: SessionEvent[] = [];
  #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  /** the write in progress (and those queued behind it) */
  #chain: Promise<void> = Promise.resolve();

  constructor(
    registry: Pick<BrokerRegistryPort, 'recordSessionEvents' | 'recordSeen'>,
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
    if (onEvent === null) return;
    try {
      onEvent(event);
    } catch (err) {
      this.#onError(err);
    }
  }

  /** The device sent something (publish, ping). */
  seen(deviceId: string): void {
    this.#seen.set(deviceId, this.#clock());
  }

  /** Queues a write of what is pending: session events first (in order), then last-seen times. */
  flush(): void {
    if (this.#events.length > 0) {
      const events = this.#events;
      this.#events = [];
      this.#write(() => this.#registry.recordSessionEvents(events));
    }
    if (this.#seen.size > 0) {
      const seen = [...this.#seen];
      this.#seen = new Map();
      this.#write(() => this.#registry.recordSeen(seen));
    }
  }

  /** Stops the timer and flushes; resolves once every queued write finished (failures are reported, not thrown). */
  close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.flush();
    return this.#chain;
  }

  #write(fn: () => Promise<void>): void {
    this.#chain = this.#chain.then(fn).catch((err: unknown) => this.#onError(err));
  }
}
