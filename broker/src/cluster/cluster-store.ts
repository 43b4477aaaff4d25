import { Readable } from 'node:stream';
import type { Aedes } from 'aedes';
import redisPersistence from 'aedes-persistence-redis';
import type { Redis } from 'ioredis';
import type { BrokerPersistence, StoredWill } from '../aedes-internals.ts';
import { LK_KEYS, STORE_KEYS } from './redis-keys.ts';
import type { RedisLink } from './redis-link.ts';
import type { ScriptedRedis } from './scripts.ts';

/** A reservation in the queue bound outlives a stuck push by this much, at most. */
const PENDING_TTL_MS = 10_000;

export interface ClusterStoreOptions {
  link: RedisLink;
  /** the node's command connection, with the scripts */
  db: ScriptedRedis;
  /** protocol.md §Limits: QoS 1 messages queued per offline persistent session */
  maxQueued: number;
  /** seconds a queued message is kept */
  queuedTtlSeconds: number;
  /** the client has a session on this node */
  isLocal: (clientId: string) => boolean;
  onDrop: (count: number) => void;
  /** aedes asks for dead brokers' wills (every 4 heartbeats): they are the will replay's, never aedes's */
  onWillScan: (alive: Readonly<Record<string, number>>) => void;
}

type Persistence = BrokerPersistence & { outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: unknown): Promise<void> };

/**
 * aedes-persistence-redis 12 (its package main: the promise/stream dual store aedes 1.2 needs) as
 * aedes sees it in a cluster: one object for the broker's life, whose store instance can be
 * replaced (`resync`), with two calls of its own:
 *
 * - **the offline-queue bound** (protocol.md §Limits) across nodes: each subscriber's admission is
 *   one script (`lkAdmitQueued`) that counts the shared queue plus pushes still on their way, so
 *   concurrent publishers on several nodes cannot overfill it; a client online anywhere is never
 *   bounded (its queue holds its in-flight messages). The push itself stays the store's own.
 * - **wills**: aedes's own replay of a dead broker's wills is turned off (it would publish a stale
 *   will of a device already back elsewhere, and with the ACL refusing a will without a client it
 *   crashed every surviving node); the will replay (will-replay.ts) does it instead.
 *
 * @example
 * ```ts
 * const store = new ClusterStore({ link, db, maxQueued: 1000, queuedTtlSeconds: 604800, isLocal, onDrop, onWillScan });
 * const aedes = new Aedes({ persistence: store.persistence });
 * ```
 */
export class ClusterStore {
  readonly #o: ClusterStoreOptions;
  #current: Persistence;
  #conn: Redis;
  readonly #bound = new Map<PropertyKey, unknown>();
  /** The object aedes holds. */
  readonly persistence: BrokerPersistence;

  constructor(o: ClusterStoreOptions) {
    this.#o = o;
    [this.#current, this.#conn] = this.#open();
    const overrides: Partial<BrokerPersistence> = {
      outgoingEnqueue: (sub, packet) => this.#enqueue([sub], packet),
      outgoingEnqueueCombi: (subs, packet) => this.#enqueue(subs, packet),
      streamWill: (alive) => {
        o.onWillScan(alive);
        return Readable.from([]) as AsyncIterable<StoredWill>;
      },
    };
    this.persistence = new Proxy({} as BrokerPersistence, {
      get: (_target, prop) => {
        if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof BrokerPersistence];
        let fn = this.#bound.get(prop);
        if (fn !== undefined) return fn;
        const value: unknown = Reflect.get(this.#current, prop, this.#current);
        if (typeof value !== 'function') return value;
        this.#bound.set(prop, (fn = value.bind(this.#current)));
        return fn;
      },
      has: (_target, prop) => prop in this.#current,
    });
  }

  /** The store instance in use now (for the will replay and the session store). */
  get current(): BrokerPersistence {
    return this.#current;
  }

  /**
   * After a gap in Redis pub/sub, this node's copy of every persistent subscription may have missed
   * changes made on other nodes (the store learns them only from broadcasts), and it would then
   * stop queueing for subscribers it never heard of. A fresh instance loads them all again, and
   * takes over once it has.
   */
  async resync(aedes: Aedes): Promise<void> {
    const [fresh, conn] = this.#open();
    try {
      await fresh.setup(aedes);
    } catch (err) {
      this.#o.link.forget(conn);
      conn.disconnect();
      throw err;
    }
    const old = this.#current;
    const oldConn = this.#conn;
    this.#current = fresh;
    this.#conn = conn;
    this.#bound.clear();
    this.#o.link.forget(oldConn);
    await old.destroy().catch(() => undefined);
  }

  #open(): [Persistence, Redis] {
    const conn = this.#o.link.open('store');
    const store = redisPersistence({
      conn,
      // every queued message in one CONNECT: a queue may exceed the bound (it grew while its client was online)
      maxSessionDelivery: this.#o.maxQueued + 10_000,
      packetTTL: () => this.#o.queuedTtlSeconds,
    }) as Persistence;
    return [store, conn];
  }

  async #enqueue(subs: ReadonlyArray<{ clientId: string }>, packet: unknown): Promise<void> {
    if (subs.length === 0) return;
    const { db, maxQueued, isLocal } = this.#o;
    const remote = subs.filter((s) => !isLocal(s.clientId));
    let verdicts: number[] = [];
    if (remote.length > 0) {
      const pipe = db.pipeline() as unknown as { lkAdmitQueued(...args: (string | number)[]): void; exec(): Promise<[Error | null, unknown][] | null> };
      for (const s of remote) pipe.lkAdmitQueued(STORE_KEYS.outgoing(s.clientId), LK_KEYS.queuePending(s.clientId), LK_KEYS.presence(s.clientId), maxQueued, PENDING_TTL_MS);
      const results = (await pipe.exec()) ?? [];
      verdicts = results.map(([err, v]) => {
        if (err !== null) throw err;
        return Number(v);
      });
    }
    const kept = subs.filter((s) => isLocal(s.clientId));
    const reserved: string[] = [];
    remote.forEach((s, i) => {
      if (verdicts[i] !== 0) kept.push(s);
      if (verdicts[i] === 2) reserved.push(s.clientId);
    });
    if (kept.length < subs.length) this.#o.onDrop(subs.length - kept.length);
    try {
      if (kept.length > 0) await this.#current.outgoingEnqueueCombi(kept, packet);
    } finally {
      if (reserved.length > 0) {
        const pipe = db.pipeline();
        for (const id of reserved) pipe.decr(LK_KEYS.queuePending(id));
        await pipe.exec();
      }
    }
  }
}
