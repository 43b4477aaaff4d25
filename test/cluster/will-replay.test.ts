/**
 * WillReplay when its node stops (broker/src/cluster/will-replay.ts): a scan running then sends no
 * further command, since the node's Redis connections close right after (a command sent after
 * QUIT fails with "Connection is closed."), and no scan starts. On a real Redis with the real store.
 */
import redisPersistence from 'aedes-persistence-redis';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerPersistence } from '../../broker/src/aedes-internals.ts';
import { Presence } from '../../broker/src/cluster/presence.ts';
import { LK_KEYS } from '../../broker/src/cluster/redis-keys.ts';
import { withScripts } from '../../broker/src/cluster/scripts.ts';
import { WillReplay } from '../../broker/src/cluster/will-replay.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { requireTools } from '../helpers/tools.ts';

const tools = requireTools(['redis-server'], 'apt-get install redis-server');
let redis: RedisServer | null = null;
afterEach(async () => {
  await redis?.close();
  redis = null;
});

const quiet = { info: () => undefined, error: () => undefined };

/** A replay on node `me` of a Redis that knows one dead node, `gone` (in lk:nodes, no liveness key). */
async function replayWithDeadNode(): Promise<{ replay: WillReplay; deadKnown(): Promise<boolean>; close(): void }> {
  redis ??= await startRedis();
  const conn = new Redis(redis.url);
  conn.on('error', () => undefined);
  const db = withScripts(conn);
  await db.sadd(LK_KEYS.nodes, 'gone');
  const store = redisPersistence({ conn }) as BrokerPersistence;
  const replay = new WillReplay({
    store: () => store,
    presence: new Presence(db, 'me', 'n1', quiet),
    db,
    aedesId: 'me',
    isLocal: () => false,
    revoked: async () => false,
    publish: async () => undefined,
    log: quiet,
  });
  return { replay, deadKnown: async () => (await db.sismember(LK_KEYS.nodes, 'gone')) === 1, close: () => conn.disconnect() };
}

describe.skipIf(tools.skip)(`the will replay of a stopping node${tools.note}`, () => {
  it('a scan running when the node stops ends without its remaining commands; none starts after', async () => {
    tools.assertPresent();
    const r = await replayWithDeadNode();
    const scanning = r.replay.scan(); // its first command (the dead nodes) is in flight
    await r.replay.stop();
    await scanning;
    // it found `gone` dead with no will left: running on, it would have removed it from lk:nodes
    expect(await r.deadKnown()).toBe(true);
    await r.replay.scan();
    expect(await r.deadKnown()).toBe(true);
    r.close();
  });

  it('a replay not stopped does remove a dead node with no will left (the control)', async () => {
    tools.assertPresent();
    const r = await replayWithDeadNode();
    await r.replay.scan();
    expect(await r.deadKnown()).toBe(false);
    r.close();
  });
});
