import type { BrokerPersistence } from './aedes-internals.ts';

export interface OfflineQueueLimit {
  /** at most this many QoS 1 messages queued per offline client */
  readonly max: number;
  /** the client id has a live connection (its queue holds in-flight messages: never drop those) */
  readonly isOnline: (clientId: string) => boolean;
  readonly onDrop: (count: number) => void;
}

/**
 * protocol.md §Limits: at most `max` QoS 1 messages queued for an offline persistent session;
 * further ones are dropped and counted. A decorator over any aedes persistence, handed to aedes
 * through its `persistence` option: every call passes through to `inner` unchanged except the
 * three that fill and empty the outgoing queues, which keep an exact count per client id (every
 * message enters through `outgoingEnqueue(Combi)` and leaves through `outgoingClearMessageId`,
 * which resolves the removed packet). Only offline clients are bounded: for an online
 * `clean:false` client the queue holds its in-flight messages, and dropping one would make aedes
 * fail the delivery and disconnect it. The count is this broker's (one node's) view.
 *
 * @example
 * ```ts
 * const persistence = limitOfflineQueues(memoryPersistence(), { max: 1000, isOnline, onDrop: (n) => dropped.inc(n) });
 * const aedes = new Aedes({ persistence });
 * ```
 */
export function limitOfflineQueues<P extends BrokerPersistence>(inner: P, limit: OfflineQueueLimit): P & { queued(clientId: string): number } {
  const counts = new Map<string, number>();
  const admit = (clientId: string): boolean => {
    const n = counts.get(clientId) ?? 0;
    if (n >= limit.max && !limit.isOnline(clientId)) return false;
    counts.set(clientId, n + 1);
    return true;
  };
  const overrides: Partial<BrokerPersistence> & { queued(clientId: string): number } = {
    outgoingEnqueue(sub, packet) {
      if (admit(sub.clientId)) return inner.outgoingEnqueue(sub, packet);
      limit.onDrop(1);
      return Promise.resolve();
    },
    outgoingEnqueueCombi(subs, packet) {
      const kept = subs.filter((s) => admit(s.clientId));
      if (kept.length < subs.length) limit.onDrop(subs.length - kept.length);
      return kept.length === 0 ? Promise.resolve() : inner.outgoingEnqueueCombi(kept, packet);
    },
    async outgoingClearMessageId(client, packet) {
      const removed = await inner.outgoingClearMessageId(client, packet);
      if (removed) {
        const n = (counts.get(client.id) ?? 1) - 1;
        if (n <= 0) counts.delete(client.id);
        else counts.set(client.id, n);
      }
      return removed;
    },
    queued: (clientId) => counts.get(clientId) ?? 0,
  };
  // every other member is the inner persistence's own, its methods bound to it (once each)
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(inner, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof typeof overrides];
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let fn = bound.get(prop);
      if (fn === undefined) bound.set(prop, (fn = value.bind(target)));
      return fn;
    },
  }) as P & { queued(clientId: string): number };
}
