/** The slice of aedes-persistence (the in-memory one) whose outgoing queues this bounds. */
interface OutgoingQueues {
  outgoingEnqueue(sub: { clientId: string }, packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: unknown): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>;
}

/**
 * protocol.md §Limits: at most `max` QoS 1 messages queued for an offline persistent session;
 * further ones are dropped and counted. Wraps the persistence's own enqueue/clear methods on
 * the instance and keeps an exact count per client id: with aedes-persistence's memory store
 * every message enters through `outgoingEnqueue(Combi)` and leaves through
 * `outgoingClearMessageId`, which resolves the removed packet. Only offline clients are
 * bounded: for an online `clean:false` client the queue holds its in-flight messages, and
 * dropping one would make aedes fail the delivery and disconnect it.
 *
 * @example
 * ```ts
 * const persistence = memoryPersistence();
 * limitOfflineQueues(persistence, 1000, (id) => id in aedes.clients, (n) => dropped.inc(n));
 * ```
 */
export function limitOfflineQueues(
  persistence: OutgoingQueues,
  max: number,
  isOnline: (clientId: string) => boolean,
  onDrop: (count: number) => void,
): { queued(clientId: string): number } {
  const counts = new Map<string, number>();
  const enqueue = persistence.outgoingEnqueue.bind(persistence);
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  const clear = persistence.outgoingClearMessageId.bind(persistence);

  const admit = (clientId: string): boolean => {
    const n = counts.get(clientId) ?? 0;
    if (n >= max && !isOnline(clientId)) return false;
    counts.set(clientId, n + 1);
    return true;
  };

  persistence.outgoingEnqueue = (sub, packet) => {
    if (admit(sub.clientId)) return enqueue(sub, packet);
    onDrop(1);
    return Promise.resolve();
  };
  persistence.outgoingEnqueueCombi = (subs, packet) => {
    const kept = subs.filter((s) => admit(s.clientId));
    if (kept.length < subs.length) onDrop(subs.length - kept.length);
    return kept.length === 0 ? Promise.resolve() : enqueueCombi(kept, packet);
  };
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet);
    if (removed) {
      const n = (counts.get(client.id) ?? 1) - 1;
      if (n <= 0) counts.delete(client.id);
      else counts.set(client.id, n);
    }
    return removed;
  };
  return { queued: (clientId) => counts.get(clientId) ?? 0 };
}
