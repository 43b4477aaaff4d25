import { DeviceClientError } from '../errors.ts';

/** What to do with a publish when the offline queue is full. */
export type QueueOverflow = 'drop-oldest' | 'reject';

/** A publish waiting for a connection; its promise settles when the broker acknowledges it. */
export interface PendingPublish {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  readonly retain: boolean;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Publishes made while the client has no session (reconnecting, refreshing its token), delivered
 * in order once it has one. Bounded, unlike mqtt.js's own offline queue (architecture.md §Library facts:
 * mqtt.js): at `max` entries, `drop-oldest` evicts the oldest (its promise rejects with
 * `message_dropped`, and `dropped` counts it), `reject` refuses the new one with `queue_full`.
 */
export class OfflineQueue {
  readonly #max: number;
  readonly #overflow: QueueOverflow;
  #items: PendingPublish[] = [];
  #dropped = 0;

  constructor(max: number, overflow: QueueOverflow) {
    if (!Number.isInteger(max) || max < 0) throw new TypeError('maxQueuedMessages must be an integer ≥ 0');
    if (overflow !== 'drop-oldest' && overflow !== 'reject') throw new TypeError("queueOverflow must be 'drop-oldest' or 'reject'");
    this.#max = max;
    this.#overflow = overflow;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Messages evicted or refused because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  push(item: PendingPublish): void {
    if (this.#items.length >= this.#max) {
      this.#dropped++;
      if (this.#overflow === 'reject' || this.#max === 0) {
        item.reject(new DeviceClientError('queue_full', `offline queue is full (${this.#max} messages)`));
        return;
      }
      this.#items.shift()?.reject(new DeviceClientError('message_dropped', 'evicted from the full offline queue'));
    }
    this.#items.push(item);
  }

  /** Removes and returns every queued publish, oldest first. */
  drain(): PendingPublish[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  /** Rejects every queued publish with `err`. */
  rejectAll(err: Error): void {
    for (const item of this.drain()) item.reject(err);
  }
}
