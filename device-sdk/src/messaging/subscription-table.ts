import type { IPublishPacket, MqttClient } from 'mqtt';
import { DeviceClientError } from '../errors.ts';
import { isValidTopicFilter, topicMatches } from '../protocol/index.ts';

/** Delivery details of a received message. */
export interface MessageMeta {
  qos: 0 | 1 | 2;
  retain: boolean;
  /** the broker may be delivering it a second time (QoS 1 allows duplicates) */
  dup: boolean;
}

/** Receives the messages of one subscription. A thrown error or rejection is reported as `'handler-error'`. */
export type MessageHandler = (topic: string, payload: Buffer, meta: MessageMeta) => void | Promise<void>;

interface Subscription {
  readonly filter: string;
  readonly qos: 0 | 1;
  readonly handler: MessageHandler;
  /** the broker granted it on the current session */
  acked: boolean;
  waiters: { resolve(): void; reject(e: Error): void }[];
}

/**
 * The subscriptions a session wants, sent one filter per SUBSCRIBE: mqtt.js drops every topic of a
 * call with one refused filter from its resubscribe list (architecture.md §Library facts), and a refused
 * filter on a persistent session must not drag allowed ones down with it. The table, not mqtt.js,
 * resubscribes when the broker has no session for us.
 */
export class SubscriptionTable {
  readonly #subs = new Map<string, Subscription>();
  /** filters unsubscribed while offline: the persistent session still has them */
  readonly #unsubscribeLater = new Set<string>();

  /** Registers `filter`; the promise settles with the SUBACK. */
  add(filter: string, qos: 0 | 1, handler: MessageHandler): Promise<void> {
    if (!isValidTopicFilter(filter)) throw new TypeError('invalid topic filter');
    if (qos !== 0 && qos !== 1) throw new TypeError('qos must be 0 or 1');
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this.#subs.has(filter)) throw new TypeError(`already subscribed to ${filter}`);
    const sub: Subscription = { filter, qos, handler, acked: false, waiters: [] };
    this.#subs.set(filter, sub);
    this.#unsubscribeLater.delete(filter);
    return new Promise((resolve, reject) => sub.waiters.push({ resolve, reject }));
  }

  /** Forgets `filter`; returns whether the broker must be told now or after reconnect. */
  remove(filter: string): boolean {
    const sub = this.#subs.get(filter);
    if (sub === undefined) return false;
    this.#subs.delete(filter);
    sub.waiters.splice(0).forEach((w) => w.resolve());
    this.#unsubscribeLater.add(filter);
    return true;
  }

  /** Sends what the broker lacks: everything when it kept no session, else only unacknowledged filters. */
  sync(client: MqttClient, sessionPresent: boolean): void {
    for (const filter of this.#unsubscribeLater) this.sendUnsubscribe(client, filter);
    for (const sub of this.#subs.values()) {
      if (!sessionPresent) sub.acked = false;
      if (!sub.acked) this.#sendSubscribe(client, sub);
    }
  }

  /** Sends one filter now (the session is online). */
  sendPending(client: MqttClient, filter: string): void {
    const sub = this.#subs.get(filter);
    if (sub !== undefined && !sub.acked) this.#sendSubscribe(client, sub);
  }

  sendUnsubscribe(client: MqttClient, filter: string): void {
    client.unsubscribe(filter, (err) => {
      if (err === undefined || err === null) this.#unsubscribeLater.delete(filter);
    });
  }

  /**
   * Runs every handler whose filter matches `topic` [MQTT-4.7]; a throw or rejection goes to
   * `onError`, never up into mqtt.js. Messages for filters no longer wanted are dropped.
   */
  deliver(topic: string, payload: Buffer, packet: IPublishPacket, onError: (err: unknown) => void): void {
    const meta: MessageMeta = { qos: packet.qos, retain: packet.retain === true, dup: packet.dup === true };
    for (const sub of this.#subs.values()) {
      if (!topicMatches(sub.filter, topic)) continue;
      try {
        const r = sub.handler(topic, payload, meta);
        if (r instanceof Promise) r.catch(onError);
      } catch (err) {
        onError(err);
      }
    }
  }

  /** Rejects every waiting subscribe (the session closed). */
  rejectAll(err: Error): void {
    for (const sub of this.#subs.values()) sub.waiters.splice(0).forEach((w) => w.reject(err));
  }

  #sendSubscribe(client: MqttClient, sub: Subscription): void {
    client.subscribe(sub.filter, { qos: sub.qos }, (err) => {
      if (this.#subs.get(sub.filter) !== sub) return; // unsubscribed meanwhile
      if (err === undefined || err === null) {
        sub.acked = true;
        sub.waiters.splice(0).forEach((w) => w.resolve());
        return;
      }
      if (isSubackError(err) && err.packet.granted.some((g) => (Number(g) & 0x80) !== 0)) {
        // protocol.md §Topics: a refused subscription gets SUBACK 0x80
        this.#subs.delete(sub.filter);
        const denied = new DeviceClientError('subscribe_denied', `the broker refused the subscription ${sub.filter}`);
        sub.waiters.splice(0).forEach((w) => w.reject(denied));
      }
      // otherwise the connection was lost before the SUBACK: sync() sends it again after reconnect
    });
  }
}

/**
 * mqtt.js's ErrorWithSubackPacket (a SUBACK refused a filter), recognised by its packet so this
 * module needs no value from mqtt.js (it is loaded with the first session, see session/mqtt-module.ts).
 */
function isSubackError(err: unknown): err is Error & { packet: { cmd: 'suback'; granted: unknown[] } } {
  if (!(err instanceof Error) || !('packet' in err)) return false;
  const packet = err.packet as { cmd?: unknown; granted?: unknown } | null | undefined;
  return packet?.cmd === 'suback' && Array.isArray(packet.granted);
}
