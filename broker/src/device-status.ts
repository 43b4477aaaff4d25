import type { Clock } from '@latchkey/device-sdk/protocol';
import type { BrokerRegistryPort, CredentialUse, SessionEvent } from './registry-port.ts';

/**
 * Device status in the registry (docs/api.md `status`) without a write per message or per
 * connect: session events (connected/disconnected, in order), `lastSeenAt` and each credential's
 * last connect and last signed message (issue 15) are collected in memory and written in batches
 * every `flushIntervalMs` and on `close()`. The registry's
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
  readonly #registry: Pick<BrokerRegistryPort, 'recordSessionEvents' | 'recordSeen' | 'recordCredentialUses'>;
  readonly #clock: Clock;
  readonly #onError: (err: unknown) => void;
  readonly #flushIntervalMs: number;
  readonly #onEvent: ((event: SessionEvent) => void) | null;
  #events: SessionEvent[] = [];
  #seen = new Map<string, number>();
  /** `principal \0 kid` → the credential's latest uses in this batch */
  #uses = new Map<string, CredentialUse>();
  #timer: NodeJS.Timeout | null = null;
  /** the write in progress (and those queued behind it) */
  #chain: Promise<void> = Promise.resolve();

  constructor(
    registry: Pick<BrokerRegistryPort, 'recordSessionEvents' | 'recordSeen' | 'recordCredentialUses'>,
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

  /** A credential verified a connect (`connect`) or a signed message (`message`) now: batched, one entry per credential. */
  credentialUsed(principal: string, kid: string, kind: 'connect' | 'message'): void {
    const key = `${principal}\0${kid}`;
    let use = this.#uses.get(key);
    if (use === undefined) {
      use = { principal, kid, connectAt: null, messageAt: null };
      this.#uses.set(key, use);
    }
    if (kind === 'connect') use.connectAt = this.#clock();
    else use.messageAt = this.#clock();
  }

  /** Queues a write of what is pending: session events first (in order), then last-seen times, then credential usage. */
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
    if (this.#uses.size > 0) {
      const uses = [...this.#uses.values()];
      this.#uses = new Map();
      this.#write(() => this.#registry.recordCredentialUses(uses));
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
