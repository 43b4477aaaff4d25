import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Aedes, Client } from 'aedes';
import mqemitterRedis from 'mqemitter-redis';
import { failureThrottle, hasLocalSession, type SharedState, type SharedStateDeps } from '../shared-state.ts';
import { clientById } from '../aedes-internals.ts';
import { waitAtMost } from '../wait-at-most.ts';
import { ClusterStore } from './cluster-store.ts';
import { Presence } from './presence.ts';
import { LK_KEYS, LK_TOPICS, STORE_KEYS } from './redis-keys.ts';
import { RedisLink } from './redis-link.ts';
import { withScripts } from './scripts.ts';
import { ClusterThrottle, RedisJtiStore, type ThrottledNotice } from './shared-auth.ts';
import { WillReplay } from './will-replay.ts';

/** New connects are refused (CONNACK 3) once the node has been cut off from Redis this long. */
export const UNAVAILABLE_AFTER_MS = 1000;
/** After a reconnect, wait this long for the other connections before catching up. */
const RESYNC_DELAY_MS = 500;
/** how long a stopping node tries to leave the presence set before it closes its connections (1 s of the broker's 5 s close) */
const LEAVE_DEADLINE_MS = 1000;
/** How long `listen` waits for Redis at start. */
const CONNECT_WAIT_MS = 15_000;

/** The default node id: the host name (cleaned, at most 20 characters) and 6 random hex digits. */
export function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 20) || 'node';
  return `${host}-${randomBytes(3).toString('hex')}`;
}

/**
 * A broker node of a cluster: aedes on aedes-persistence-redis and mqemitter-redis, with what
 * latchkey shares between nodes (docs/operations.md §Scaling out): presence with node liveness,
 * the offline-queue bound, single-use token ids, refused-connect counts per address, the replay of
 * dead nodes' wills, forgetting a deleted device, and catching up after a Redis outage.
 *
 * The aedes id is `<node id>-<uuid>`, new at every start: aedes numbers the packets it queues from 0
 * in each process, and a restarted node reusing its id overwrote messages still queued from before.
 *
 * @example
 * ```ts
 * const state = clusterState({ config: { ...config, redisUrl: 'redis://127.0.0.1:6379' }, aedes: () => aedes, sessions, registry, metrics, log });
 * ```
 */
export function clusterState(deps: SharedStateDeps): SharedState & { readonly nodeId: string; readonly aedesId: string } {
  const { config, sessions, registry, log } = deps;
  const nodeId = config.nodeId ?? defaultNodeId();
  const aedesId = `${nodeId}-${randomUUID()}`;
  const link = new RedisLink(config.redisUrl as string, nodeId, log);
  const db = withScripts(link.open('db', () => scheduleResync()));
  const mq = mqemitterRedis({ subConn: link.open('sub', () => scheduleResync()), pubConn: link.open('pub') });
  // without a listener an unreachable Redis is an unhandled 'error' event that ends the process; each
  // connection already reports its own errors (redis-link.ts)
  (mq as unknown as { state: NodeJS.EventEmitter }).state.on('error', () => undefined);
  const presence = new Presence(db, aedesId, nodeId, log);
  const local = (clientId: string) => clientById(deps.aedes(), clientId) !== undefined;
  const replay = new WillReplay({
    store: () => store.current,
    presence,
    db,
    aedesId,
    isLocal: local,
    revoked: async (principal) => {
      const record = await registry.findPrincipal(principal);
      return record === null || record.blocked;
    },
    publish: (will) =>
      new Promise((resolve, reject) => deps.aedes().publish({ cmd: 'publish', dup: false, ...will }, (err) => (err ? reject(err) : resolve()))),
    log,
  });
  const store = new ClusterStore({
    link,
    db,
    maxQueued: config.maxQueuedMessages,
    queuedTtlSeconds: config.queuedMessageTtl,
    isLocal: local,
    onDrop: (n) => deps.metrics.dropped('offline_queue_full', n),
    onWillScan: () => void replay.scan(),
  });
  const throttle = new ClusterThrottle(
    failureThrottle(config),
    db,
    (notice) => mq.emit({ topic: LK_TOPICS.throttled, payload: Buffer.from(JSON.stringify(notice)) }, () => undefined),
    (err) => log.warn({ err }, 'counting a refused connect in Redis failed'),
  );
  const sessionOf = new WeakMap<Client, string>();
  let aedes: Aedes | null = null;
  let timers: NodeJS.Timeout[] = [];
  let resyncTimer: NodeJS.Timeout | null = null;

  /** After any reconnect: hold new connects, reload the subscriptions, renew liveness and presence. */
  function scheduleResync(): void {
    if (aedes === null) return;
    link.holdDown('resync', true);
    if (resyncTimer !== null) clearTimeout(resyncTimer);
    resyncTimer = setTimeout(() => void resync(), RESYNC_DELAY_MS);
  }

  async function resync(): Promise<void> {
    resyncTimer = null;
    if (aedes === null) return;
    const started = Date.now();
    try {
      await link.ready(CONNECT_WAIT_MS);
      await store.resync(aedes);
      await presence.beat();
      for (const client of sessions.clients()) {
        const session = sessionOf.get(client);
        if (session === undefined || client.closed) continue;
        // a live session elsewhere took this client over while this node was cut off: this one goes
        if (!(await presence.reassert(client.id, session))) client.close();
      }
      link.holdDown('resync', false);
      log.info({ ms: Date.now() - started }, 'caught up with Redis after a reconnect');
    } catch (err) {
      log.warn({ err }, 'catching up with Redis failed; retrying');
      resyncTimer = setTimeout(() => void resync(), 1000);
    }
  }

  return {
    nodeId,
    aedesId,
    aedesOptions: { persistence: store.persistence, mq, id: aedesId, heartbeatInterval: config.heartbeatInterval * 1000 },
    jtis: config.requireJti ? new RedisJtiStore(db, config.clockTolerance * 1000) : null,
    throttle,
    unavailable: () => link.health.downForMs() > UNAVAILABLE_AFTER_MS,
    isOnline: async (clientId) => hasLocalSession(deps.aedes(), sessions, clientId) || (await presence.isOnline(clientId)),
    onlineAmong: (ids) => presence.onlineAmong(ids),
    sessionUp(client) {
      sessionOf.set(client, presence.up(client.id));
    },
    sessionDown(client) {
      const session = sessionOf.get(client);
      if (session !== undefined) presence.down(client.id, session);
    },
    async forget(clientId) {
      await db.lkForget(STORE_KEYS.outgoing(clientId), STORE_KEYS.wills, LK_KEYS.queuePending(clientId), STORE_KEYS.willSuffix(clientId));
      const client = { id: clientId };
      await store.current.cleanSubscriptions(client); // broadcast: every node's copy forgets them too
      await store.current.cleanIncoming?.(client);
      await db.del(LK_KEYS.presence(clientId));
    },
    async start(started) {
      aedes = started;
      await link.ready(CONNECT_WAIT_MS);
      await presence.start();
      await new Promise<void>((resolve) =>
        mq.on(
          LK_TOPICS.throttled,
          (packet, done) => {
            try {
              throttle.onNotice(JSON.parse(String(packet.payload)) as ThrottledNotice, Date.now());
            } catch {
              // a malformed notice is ignored
            }
            done();
          },
          resolve,
        ),
      );
      const scan = setInterval(() => void replay.scan(), config.heartbeatInterval * 1000);
      scan.unref();
      timers = [scan];
    },
    async stop() {
      aedes = null;
      for (const t of timers) clearInterval(t);
      if (resyncTimer !== null) clearTimeout(resyncTimer);
      const replayed = replay.stop();
      // Leaving is best effort and bounded: with Redis away, ioredis would hold these commands
      // for its retries (about 20 s), past the broker's 5 s close; the liveness key expires in 3 s
      // anyway. A will scan running (another node stopping reads as dead) sends nothing more, and
      // its call in flight returns before the connections close under it, or fails as they close.
      await waitAtMost(Promise.all([presence.stop().catch(() => undefined), replayed]), LEAVE_DEADLINE_MS);
      await link.close(); // the store's connection too (aedes.close() closed the emitter's)
    },
  };
}
