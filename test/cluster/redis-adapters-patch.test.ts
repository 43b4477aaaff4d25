/**
 * patches/mqemitter-redis+7.2.1.patch and patches/aedes-persistence-redis+12.0.0.patch
 * (docs/architecture.md §Patches): a Redis connection that closes while a command the adapter sent
 * without awaiting it is in flight rejects that command with ioredis's "Connection is closed.",
 * and stock, nothing handles it: an unhandled rejection, which fails a vitest run and, by Node's
 * default, ends a node. Each test closes the connection (`disconnect()`, as RedisLink.close and
 * ClusterStore.resync do) and drops it at a proxy in the same tick, so the replies are never read;
 * each fails on the stock package.
 */
import { Aedes, type Client } from 'aedes';
import redisPersistence from 'aedes-persistence-redis';
import { Redis } from 'ioredis';
import mqemitter from 'mqemitter';
import mqemitterRedis from 'mqemitter-redis';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import type { BrokerPersistence } from '../../broker/src/aedes-internals.ts';
import { cuttableProxy, startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';

const tools = requireTools(['redis-server'], 'apt-get install redis-server');
let redis: RedisServer | null = null;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  if (!tools.skip) redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Collects unhandled rejections until `stop()` (which lets pending ones surface first). */
function unhandledRejections(): { stop(): Promise<unknown[]> } {
  const got: unknown[] = [];
  const on = (reason: unknown) => got.push(reason);
  process.on('unhandledRejection', on);
  return {
    async stop() {
      await new Promise((resolve) => setTimeout(resolve, 100));
      process.off('unhandledRejection', on);
      return got.map((r) => (r instanceof Error ? r.message : r));
    },
  };
}

/** A connection through a proxy that can drop it: `drop()` closes it on purpose before any reply in flight is read. */
async function droppableConnection(): Promise<{ conn: Redis; drop(): void }> {
  const proxy = await cuttableProxy((redis as RedisServer).port);
  const conn = new Redis(`redis://127.0.0.1:${proxy.port}`, { retryStrategy: () => null });
  conn.on('error', () => undefined);
  cleanups.push(async () => {
    conn.disconnect();
    await proxy.close();
  });
  await new Promise<void>((resolve) => conn.once('ready', () => resolve()));
  return {
    conn,
    drop() {
      conn.disconnect();
      proxy.cut(60_000);
    },
  };
}

type Store = BrokerPersistence & { putWill(client: Client, packet: unknown): Promise<unknown> };

async function storeOn(conn: Redis): Promise<Store> {
  const store = redisPersistence({ conn }) as Store;
  const broker = new Aedes({ persistence: store, mq: mqemitter() });
  await broker.listen();
  cleanups.push(() => new Promise<void>((resolve) => broker.close(() => resolve())));
  return store;
}

const client = (id: string) => ({ id }) as unknown as Client;
const will = { cmd: 'publish' as const, topic: 'devices/thermo-1/state', payload: Buffer.from('{"lost":true}'), qos: 1 as const, retain: false, dup: false };

describe.skipIf(tools.skip)(`Redis adapters with a connection closed under them${tools.note}`, () => {
  it('mqemitter-redis: close() while QUIT has no reply yet ends without an unhandled rejection', async () => {
    tools.assertPresent();
    const pub = await droppableConnection();
    const sub = await droppableConnection();
    const mq = mqemitterRedis({ pubConn: pub.conn, subConn: sub.conn });
    (mq as unknown as { state: NodeJS.EventEmitter }).state.on('error', () => undefined);
    const seen = unhandledRejections();
    const closed = new Promise<void>((resolve) => mq.close(() => resolve()));
    pub.drop(); // QUIT was written; its reply is lost with the connection
    sub.drop();
    await closed;
    expect(await seen.stop()).toEqual([]);
  });

  it('aedes-persistence-redis: putWill and delWill reject to their caller, and leave no unhandled rejection', async () => {
    tools.assertPresent();
    for (const call of [
      (s: Store) => s.putWill(client('thermo-1'), will),
      (s: Store) => s.delWill({ id: 'thermo-1', brokerId: 'b1' }),
    ]) {
      const link = await droppableConnection();
      const store = await storeOn(link.conn);
      const seen = unhandledRejections();
      const pending = call(store);
      link.drop();
      await expect(pending).rejects.toThrow('Connection is closed.');
      expect(await seen.stop()).toEqual([]);
    }
  });

  it('aedes-persistence-redis: the clean-up of a dangling queued key leaves no unhandled rejection', async () => {
    tools.assertPresent();
    const link = await droppableConnection();
    const store = await storeOn(link.conn);
    // the queue names a packet that is gone (expired): reading the queue removes the name
    await (redis as RedisServer).client.rpush('outgoing:thermo-1', 'packet:gone:1');
    const seen = unhandledRejections();
    const read = store.outgoingStream(client('thermo-1'))[Symbol.asyncIterator]();
    expect((await read.next()).done).toBe(true); // the LREM is written, not yet answered
    link.drop();
    expect(await seen.stop()).toEqual([]);
  });
});
