/** aedes-persistence-redis 12 ships no types: what the broker uses of its main export (docs/architecture.md §Library facts). */
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis';

  interface RedisPersistenceOptions {
    /** the connection to use (the store disconnects it in `destroy`) */
    conn?: Redis;
    /** queued messages delivered per CONNECT, minus one (default 1000) */
    maxSessionDelivery?: number;
    /** seconds a queued packet is kept (0: for ever) */
    packetTTL?: (packet: unknown) => number;
  }

  /** aedes-persistence's CallBackPersistence around the async store: promise style when called without a callback. */
  function redisPersistence(opts?: RedisPersistenceOptions): unknown;
  export = redisPersistence;
}
