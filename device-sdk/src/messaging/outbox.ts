import type { MqttClient } from 'mqtt';
import { DeviceClientError } from '../errors.ts';
import { InflightPublishes } from './inflight-publishes.ts';
import { OfflineQueue, type PendingPublish, type QueueOverflow } from './offline-queue.ts';

/** bytes a PUBLISH adds around topic and payload: fixed header (≤ 5), topic length (2), packet id (2) */
const PUBLISH_OVERHEAD = 9;

/**
 * A session's outgoing publishes, in order: those waiting for a session (the bounded offline
 * queue) and those handed to mqtt.js and not yet acknowledged (in flight).
 *
 * @example
 * ```ts
 * const outbox = new Outbox({ maxQueuedMessages: 1000, queueOverflow: 'drop-oldest', maxPacketSize: 262_144 });
 * await outbox.publish({ topic, payload, qos: 1, retain: false }, online ? client : null);
 * ```
 */
export class Outbox {
  readonly #queue: OfflineQueue;
  readonly #inflight = new InflightPublishes();
  readonly #maxPacketSize: number;

  constructor(o: { maxQueuedMessages: number; queueOverflow: QueueOverflow; maxPacketSize: number }) {
    this.#queue = new OfflineQueue(o.maxQueuedMessages, o.queueOverflow);
    this.#maxPacketSize = o.maxPacketSize;
  }

  /** Publishes evicted or refused by the queue, publishes waiting for a session, publishes in flight. */
  get stats(): { dropped: number; queued: number; inflight: number } {
    return { dropped: this.#queue.dropped, queued: this.#queue.length, inflight: this.#inflight.size };
  }

  /**
   * Sends now through `client` (a session is up), or queues (`null`). Resolves when the broker
   * acknowledged it (QoS 1) or it was written (QoS 0).
   */
  publish(message: Omit<PendingPublish, 'resolve' | 'reject'>, client: MqttClient | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (message.payload.byteLength + Buffer.byteLength(message.topic) + PUBLISH_OVERHEAD > this.#maxPacketSize) {
        // protocol.md §Limits: a larger packet closes the connection; resending it after every reconnect would loop
        return reject(new DeviceClientError('payload_too_large', `PUBLISH exceeds maxPacketSize (${this.#maxPacketSize} bytes)`));
      }
      const item: PendingPublish = { ...message, resolve, reject };
      if (client !== null) this.#inflight.send(client, item);
      else this.#queue.push(item);
    });
  }

  /** A session is up: what waited for it goes out, oldest first. */
  flush(client: MqttClient): void {
    for (const item of this.#queue.drain()) this.#inflight.send(client, item);
  }

  /** The connection was lost: waiting drains learn it now. */
  connectionLost(): void {
    this.#inflight.connectionLost();
  }

  /** The broker accepted a session and closed it while mqtt.js resent: see {@link InflightPublishes.strikeOldest}. */
  strikeOldest(client: MqttClient): void {
    this.#inflight.strikeOldest(client);
  }

  /** Resolves true once nothing is in flight, false after `timeoutMs` or a connection loss. */
  drain(timeoutMs: number): Promise<boolean> {
    return this.#inflight.drain(timeoutMs);
  }

  /** Rejects every queued publish (the session is closing; those in flight may still be acknowledged). */
  rejectQueued(err: Error): void {
    this.#queue.rejectAll(err);
  }

  /** Rejects every publish still in flight. */
  rejectInflight(err: Error): void {
    this.#inflight.rejectAll(err);
  }
}
