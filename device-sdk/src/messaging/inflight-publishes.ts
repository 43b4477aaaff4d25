import type { MqttClient } from 'mqtt';
import { DeviceClientError } from '../errors.ts';
import type { PendingPublish } from './offline-queue.ts';

interface Inflight {
  readonly item: PendingPublish;
  /** mqtt.js packet id (QoS 1), to remove a poison message from its store */
  messageId: number | null;
  /** times the broker accepted a session and closed it while this message was the one being resent */
  strikes: number;
}

/**
 * A message the broker refuses (outside the ACL, too large) closes the connection (protocol.md
 * §Topics); mqtt.js would resend it first on every reconnect, forever. After this many accepted
 * sessions closed while it was the oldest unacknowledged message, it is given up (`publish_refused`).
 */
export const POISON_STRIKES = 3;

/** Publishes handed to mqtt.js and not yet acknowledged, oldest first (mqtt.js resends in that order). */
export class InflightPublishes {
  readonly #entries = new Set<Inflight>();
  #drainWaiters: ((drained: boolean) => void)[] = [];

  get size(): number {
    return this.#entries.size;
  }

  /** Hands `item` to mqtt.js (the session is online); settles it on PUBACK (QoS 1) or write (QoS 0). */
  send(client: MqttClient, item: PendingPublish): void {
    let entry: Inflight | null = null;
    const done = (err?: Error) => {
      if (entry === null || !this.#entries.delete(entry)) return; // settled elsewhere (close)
      if (err === undefined) item.resolve();
      else if (entry.strikes >= POISON_STRIKES) {
        item.reject(new DeviceClientError('publish_refused', `the broker closed the connection each time this message was delivered (${POISON_STRIKES} times)`));
      } else item.reject(new DeviceClientError('publish_failed', 'the MQTT client failed to publish', { cause: err }));
      if (this.#entries.size === 0) this.#flush(true);
    };
    // Registered before publish(): a QoS 0 callback may run synchronously.
    entry = { item, messageId: null, strikes: 0 };
    this.#entries.add(entry);
    client.publish(item.topic, item.payload, { qos: item.qos, retain: item.retain }, (err) => done(err ?? undefined));
    // online and not processing the store: publish() allocated the id synchronously
    if (item.qos === 1 && this.#entries.has(entry)) entry.messageId = client.getLastMessageId();
  }

  /**
   * The broker accepted a session and closed it while resending: strike the oldest message (the one
   * mqtt.js resends first, and waits on) and give it up at {@link POISON_STRIKES}.
   */
  strikeOldest(client: MqttClient): void {
    const oldest = this.#entries.values().next().value;
    if (oldest === undefined || oldest.messageId === null) return;
    oldest.strikes++;
    if (oldest.strikes >= POISON_STRIKES) client.removeOutgoingMessage(oldest.messageId);
  }

  /** Resolves true once nothing is unacknowledged, false after `timeoutMs` or a connection loss. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#entries.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = (drained: boolean) => {
        clearTimeout(timer);
        resolve(drained);
      };
      const timer = setTimeout(() => {
        this.#drainWaiters = this.#drainWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.#drainWaiters.push(waiter);
    });
  }

  /** The connection was lost: drain waiters learn it now. */
  connectionLost(): void {
    this.#flush(false);
  }

  rejectAll(err: Error): void {
    for (const e of this.#entries) e.item.reject(err);
    this.#entries.clear();
    this.#flush(false);
  }

  #flush(drained: boolean): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w(drained);
  }
}
