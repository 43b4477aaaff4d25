import type { Clock } from '@latchkey/device-sdk/protocol';
import type { BrokerRegistryPort } from './registry-port.ts';

/**
 * Device status in the registry (http-api.md `status`) without a write per message:
 * connect and disconnect are written at once, `lastSeenAt` is collected in memory and
 * written in one batch every `flushIntervalMs` and on `close()`.
 *
 * @example
 * ```ts
 * const status = new DeviceStatus(registry, clock, 5000, (err) => log.error({ err }, 'status write failed'));
 * status.start();
 * status.seen('thermo-1');
 * ```
 */
export class DeviceStatus {
  readonly #registry: BrokerRegistryPort;
  readonly #clock: Clock;
  readonly #onError: (err: unknown) => void;
  #pending = new Map<string, number>();
  readonly #flushIntervalMs: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(registry: BrokerRegistryPort, clock: Clock, flushIntervalMs: number, onError: (err: unknown) => void) {
    this.#registry = registry;
    this.#clock = clock;
    this.#onError = onError;
    this.#flushIntervalMs = flushIntervalMs;
  }

  /** Starts the periodic `lastSeenAt` flush. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.flush(), this.#flushIntervalMs);
    this.#timer.unref();
  }

  connected(deviceId: string): void {
    const at = this.#clock();
    this.#pending.set(deviceId, at); // a CONNECT is something the device sent
    this.#write(() => this.#registry.recordConnected(deviceId, at));
  }

  disconnected(deviceId: string): void {
    this.#write(() => this.#registry.recordDisconnected(deviceId, this.#clock()));
  }

  /** The device sent something (publish, ping). */
  seen(deviceId: string): void {
    this.#pending.set(deviceId, this.#clock());
  }

  flush(): void {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending = new Map();
    this.#write(() => this.#registry.recordSeen(batch));
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.flush();
  }

  #write(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onError(err);
    }
  }
}
