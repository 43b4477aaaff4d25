/**
 * Revocation latency as the cluster tests measure it (docs/protocol.md: a session ends within 1 s of
 * its revocation being stored): each revocation timed from its own request to its client's close.
 */
import type { MqttClient } from 'mqtt';

/** A live client and when it closed (performance clock, ms). */
export interface WatchedSession {
  client: MqttClient;
  closedAt: Promise<number>;
}

/** Starts watching `client` for its close. */
export function watchClose(client: MqttClient): WatchedSession {
  return { client, closedAt: new Promise<number>((resolve) => client.once('close', () => resolve(performance.now()))) };
}

/**
 * Revokes each session in turn (`revoke(i)`, awaited, in session order) and times each from its own
 * request to its client's close: p50 and p100 in ms, rounded. (Timing the whole sequence would count
 * the writes before a device's own in its latency: under load, 50 writes alone took over a second.)
 */
export async function revokeInTurn(sessions: readonly WatchedSession[], revoke: (i: number) => Promise<unknown>): Promise<{ p50: number; p100: number }> {
  const ms: Promise<number>[] = [];
  for (const [i, s] of sessions.entries()) {
    const sent = performance.now();
    await revoke(i);
    ms.push(s.closedAt.then((t) => t - sent));
  }
  const sorted = (await Promise.all(ms)).sort((x, y) => x - y);
  return { p50: Math.round(sorted[Math.floor(sorted.length / 2)] as number), p100: Math.round(sorted[sorted.length - 1] as number) };
}
