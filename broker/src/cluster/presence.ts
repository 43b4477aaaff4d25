import { LK_KEYS } from './redis-keys.ts';
import type { ScriptedRedis } from './scripts.ts';

/** How often a node renews its liveness key, and how long the key lives without renewal. */
export const LIVENESS_BEAT_MS = 1000;
export const LIVENESS_TTL_MS = 3 * LIVENESS_BEAT_MS;

type Log = { error(obj: object, msg: string): void };

/**
 * Which node holds each client's session, cluster-wide (docs/operations.md §Scaling out).
 *
 * - A node incarnation (its aedes id) is alive while `lk:node:<id>` exists: renewed every second,
 *   it expires 3 s after the node stops, so a killed node's devices read offline within about 3 s.
 * - `lk:presence:<clientId>` names `<aedes id>:<session number>`. It is written when a session is
 *   up, and deleted when it ends only if it still names that session, so a takeover's late
 *   disconnect on the old node never erases the new session's presence. It counts only while its
 *   node is alive, so a crashed node's sessions need no clean-up to read offline.
 *
 * @example
 * ```ts
 * const presence = new Presence(db, aedes.id, 'node-a', log);
 * presence.start();
 * const session = presence.up('thermo-1');
 * await presence.isOnline('thermo-1'); // true, from any node
 * presence.down('thermo-1', session);
 * ```
 */
export class Presence {
  readonly #db: ScriptedRedis;
  readonly #aedesId: string;
  readonly #nodeId: string;
  readonly #log: Log;
  readonly #startedAt = Date.now();
  #seq = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(db: ScriptedRedis, aedesId: string, nodeId: string, log: Log) {
    this.#db = db;
    this.#aedesId = aedesId;
    this.#nodeId = nodeId;
    this.#log = log;
  }

  /** Announces this node and keeps its liveness key fresh. */
  async start(): Promise<void> {
    await this.#db.sadd(LK_KEYS.nodes, this.#aedesId);
    await this.beat();
    this.#timer = setInterval(() => void this.beat().catch(() => undefined), LIVENESS_BEAT_MS);
    this.#timer.unref();
  }

  /** Renews the liveness key (also right after a reconnect: Redis may have lost it). */
  beat(): Promise<unknown> {
    const value = JSON.stringify({ nodeId: this.#nodeId, startedAt: this.#startedAt });
    return this.#db.set(LK_KEYS.node(this.#aedesId), value, 'PX', LIVENESS_TTL_MS);
  }

  /** A session is up on this node: returns its presence value (what `down` needs). */
  up(clientId: string): string {
    const session = `${this.#aedesId}:${++this.#seq}`;
    this.#db.set(LK_KEYS.presence(clientId), session).catch((err: unknown) => this.#log.error({ err, clientId }, 'writing presence failed'));
    return session;
  }

  /** A session ended: its presence goes, unless a newer session (on any node) has taken it. */
  down(clientId: string, session: string): void {
    this.#db.lkPresenceDown(LK_KEYS.presence(clientId), session).catch((err: unknown) => this.#log.error({ err, clientId }, 'clearing presence failed'));
  }

  /**
   * After a reconnect to Redis: claims the presence of a session this node still holds. False
   * when a live session on another node holds it (this node missed the takeover while cut off).
   */
  async reassert(clientId: string, session: string): Promise<boolean> {
    return (await this.#db.lkPresenceReassert(LK_KEYS.presence(clientId), session)) === 1;
  }

  /** Is the client's session up on a live node (this one included)? */
  async isOnline(clientId: string): Promise<boolean> {
    return (await this.#db.lkOnline(LK_KEYS.presence(clientId))) === 1;
  }

  /** Which of `clientIds` have a session on a live node: one round trip (a pipeline). */
  async onlineAmong(clientIds: readonly string[]): Promise<Set<string>> {
    if (clientIds.length === 0) return new Set();
    const pipe = this.#db.pipeline() as unknown as { lkOnline(key: string): void; exec(): Promise<[Error | null, unknown][] | null> };
    for (const id of clientIds) pipe.lkOnline(LK_KEYS.presence(id));
    const results = (await pipe.exec()) ?? [];
    const online = new Set<string>();
    results.forEach(([err, value], i) => {
      if (err !== null) throw err;
      if (value === 1) online.add(clientIds[i] as string);
    });
    return online;
  }

  /** Whether a node incarnation is alive. */
  async nodeAlive(aedesId: string): Promise<boolean> {
    return (await this.#db.exists(LK_KEYS.node(aedesId))) === 1;
  }

  /** Node incarnations that started and are dead now (their liveness key expired). */
  async deadNodes(): Promise<string[]> {
    const ids = await this.#db.smembers(LK_KEYS.nodes);
    if (ids.length === 0) return [];
    const pipe = this.#db.pipeline();
    for (const id of ids) pipe.exists(LK_KEYS.node(id));
    const results = (await pipe.exec()) ?? [];
    return ids.filter((_id, i) => results[i]?.[1] === 0);
  }

  /** A dead node whose wills were all dealt with leaves the set. */
  async forgetNode(aedesId: string): Promise<void> {
    await this.#db.srem(LK_KEYS.nodes, aedesId);
  }

  /** This node stops: it leaves at once (its devices read offline now, not in 3 s). */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#db.del(LK_KEYS.node(this.#aedesId));
    await this.#db.srem(LK_KEYS.nodes, this.#aedesId);
  }
}
