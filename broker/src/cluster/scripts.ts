import type { Redis } from 'ioredis';
import { LK_KEYS, STORE_KEYS } from './redis-keys.ts';

/**
 * Where a presence value names a live node: `GET presence` → the node incarnation before the last
 * `:` → `EXISTS lk:node:<it>`. Shared by the scripts below (Lua, one string).
 */
const LIVE_PRESENCE = `
local function live(presenceKey)
  local v = redis.call('GET', presenceKey)
  if not v then return false end
  local node = string.match(v, '^(.*):[^:]*$')
  return node ~= nil and redis.call('EXISTS', '${LK_KEYS.nodePrefix}' .. node) == 1
end
`;

/**
 * The Lua scripts of a cluster node, each one round trip and atomic. The reasons they exist are in
 * docs/operations.md §Scaling out; each is tested in test/cluster/.
 */
const SCRIPTS = {
  /** KEYS: presence. 1 when the client's session is on a live node. */
  lkOnline: { numberOfKeys: 1, lua: `${LIVE_PRESENCE} if live(KEYS[1]) then return 1 end return 0` },

  /** KEYS: presence. ARGV: this session's value. Deletes it only while it still names this session (a takeover's late disconnect keeps the new one). */
  lkPresenceDown: { numberOfKeys: 1, lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0` },

  /**
   * KEYS: presence. ARGV: this session's value. After a reconnect: claims the presence unless a
   * live session elsewhere holds it (0: this node's session is the stale one).
   */
  lkPresenceReassert: {
    numberOfKeys: 1,
    lua: `${LIVE_PRESENCE}
      local v = redis.call('GET', KEYS[1])
      if v and v ~= ARGV[1] and live(KEYS[1]) then return 0 end
      redis.call('SET', KEYS[1], ARGV[1]) return 1`,
  },

  /**
   * The offline-queue bound across nodes (protocol.md §Limits). KEYS: outgoing list, pending
   * counter, presence. ARGV: max, pending TTL ms. 1: online somewhere (its queue holds in-flight
   * messages: never bounded); 2: admitted (pending counter taken: decrement it after the push);
   * 0: full, dropped. Counting pushes still on their way makes it exact with concurrent publishers.
   */
  lkAdmitQueued: {
    numberOfKeys: 3,
    lua: `${LIVE_PRESENCE}
      if live(KEYS[3]) then return 1 end
      local n = redis.call('LLEN', KEYS[1]) + tonumber(redis.call('GET', KEYS[2]) or '0')
      if n >= tonumber(ARGV[1]) then return 0 end
      redis.call('INCR', KEYS[2]) redis.call('PEXPIRE', KEYS[2], ARGV[2])
      return 2`,
  },

  /**
   * Forgets a deleted client's queue and wills. KEYS: outgoing list, will list, pending counter.
   * ARGV: the will-key suffix. Each queued packet's shared count goes down, and the packet goes
   * when no queue holds it any more. Returns how many queued messages were dropped.
   */
  lkForget: {
    numberOfKeys: 3,
    lua: `
      local n = 0
      for _, pkt in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
        if string.sub(pkt, 1, ${STORE_KEYS.packetPrefix.length}) == '${STORE_KEYS.packetPrefix}' then
          local left = redis.call('DECR', pkt .. ':offlineCount')
          if left <= 0 then redis.call('DEL', pkt, pkt .. ':offlineCount') end
        else
          redis.call('DEL', pkt)
        end
        n = n + 1
      end
      redis.call('DEL', KEYS[1], KEYS[3])
      local suffix = ARGV[1]
      for _, w in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        if string.sub(w, -string.len(suffix)) == suffix then
          redis.call('LREM', KEYS[2], 0, w) redis.call('DEL', w)
        end
      end
      return n`,
  },

  /** KEYS: the address's counter. ARGV: window ms. The count in the current window (the first failure starts it). */
  lkAuthFailure: {
    numberOfKeys: 1,
    lua: `local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return {n, redis.call('PTTL', KEYS[1])}`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;

/** A Redis connection with latchkey's scripts as commands (EVALSHA, loaded on first use). */
export type ScriptedRedis = Redis & { [K in ScriptName]: (...args: (string | number)[]) => Promise<unknown> };

/** Defines the scripts on `conn` (ioredis re-sends a script Redis forgot, e.g. after a restart). */
export function withScripts(conn: Redis): ScriptedRedis {
  for (const [name, def] of Object.entries(SCRIPTS)) conn.defineCommand(name, def);
  return conn as ScriptedRedis;
}
