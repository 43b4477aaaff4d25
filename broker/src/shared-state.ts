import type { Aedes, Client } from 'aedes';
import { clientById, memoryPersistence, type BrokerPersistence } from './aedes-internals.ts';
import { FailureThrottle, type ConnectThrottle } from './auth/failure-throttle.ts';
import { JtiCache, type JtiStore } from './auth/jti-cache.ts';
import type { SessionTable } from './auth/session-table.ts';
import type { BrokerMetrics } from './broker-metrics.ts';
import type { BrokerConfig } from './config.ts';
import { limitOfflineQueues } from './offline-queue-limit.ts';
import type { BrokerRegistryPort } from './registry-port.ts';
import { DEFAULT_LIMITS } from '@latchkey/device-sdk/protocol';

/**
 * What one broker process shares with nothing, and a cluster node shares through Redis
 * (docs/operations.md §Scaling out): the store and emitter aedes runs on, used token ids, refused
 * connects per address, which node holds each session, and forgetting a deleted device's session.
 * The broker is written against this; `processState` (below) and `clusterState`
 * (cluster/cluster-state.ts) are the two implementations.
 */
export interface SharedState {
  /** the aedes options that differ: store, emitter, broker id, heartbeat */
  readonly aedesOptions: { persistence: BrokerPersistence; mq?: unknown; id?: string; heartbeatInterval?: number };
  /** null unless `requireJti` */
  readonly jtis: JtiStore | null;
  readonly throttle: ConnectThrottle;
  /** True while new connects must be refused with CONNACK 3 (the shared store has been unreachable for over 1 s). */
  unavailable(): boolean;
  /** Has the client a live session, on this node or any other? */
  isOnline(clientId: string): Promise<boolean>;
  /** Which of these clients have a live session anywhere. */
  onlineAmong(clientIds: readonly string[]): Promise<Set<string>>;
  /** A session was accepted (after its CONNACK) / ended on this node. */
  sessionUp(client: Client): void;
  sessionDown(client: Client): void;
  /** A deleted device leaves nothing behind: stored subscriptions, queued messages, wills, QoS 2 state. */
  forget(clientId: string): Promise<void>;
  /** After aedes.listen(): timers and subscriptions of its own. */
  start(aedes: Aedes): Promise<void>;
  /** After aedes.close(). */
  stop(): Promise<void>;
}

export interface SharedStateDeps {
  config: BrokerConfig;
  /** the broker's aedes (built after the state: read it only once the broker runs) */
  aedes: () => Aedes;
  sessions: SessionTable;
  registry: BrokerRegistryPort;
  metrics: Pick<BrokerMetrics, 'dropped'>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** a store for aedes instead of the in-memory one (one process only) */
  persistence?: BrokerPersistence | undefined;
  mq?: unknown;
}

/** A client's session on this node: registered with aedes, not closed, authenticated. */
export function hasLocalSession(aedes: Aedes, sessions: SessionTable, clientId: string): boolean {
  const client = clientById(aedes, clientId);
  // clientById: registered before its CONNACK is written; `connected` is set only later
  return client !== undefined && !client.closed && sessions.principalOf(client) !== undefined;
}

/** The connect throttle's table, from the broker's settings. */
export function failureThrottle(config: BrokerConfig): FailureThrottle {
  return new FailureThrottle({ limit: config.authFailureLimit, windowMs: DEFAULT_LIMITS.authFailureWindowMs, capacity: config.throttleTableSize });
}

/**
 * One process: aedes's in-memory store (or the one given) with the offline-queue bound, an
 * in-memory jti cache and throttle, and presence read from this broker's own sessions.
 *
 * @example
 * ```ts
 * const state = processState({ config, aedes: () => aedes, sessions, registry, metrics, log });
 * const aedes = new Aedes({ ...state.aedesOptions });
 * ```
 */
export function processState(deps: SharedStateDeps): SharedState {
  const { config, sessions } = deps;
  const persistence = limitOfflineQueues(deps.persistence ?? memoryPersistence(), {
    max: config.maxQueuedMessages,
    isOnline: (clientId) => clientById(deps.aedes(), clientId) !== undefined,
    onDrop: (n) => deps.metrics.dropped('offline_queue_full', n),
  });
  const local = (clientId: string) => hasLocalSession(deps.aedes(), sessions, clientId);
  return {
    aedesOptions: { persistence, ...(deps.mq === undefined ? {} : { mq: deps.mq }) },
    jtis: config.requireJti ? new JtiCache({ capacity: config.jtiCacheSize, toleranceMs: config.clockTolerance * 1000 }) : null,
    throttle: failureThrottle(config),
    unavailable: () => false,
    isOnline: async (clientId) => local(clientId),
    onlineAmong: async (ids) => new Set(ids.filter(local)),
    sessionUp: () => undefined,
    sessionDown: () => undefined,
    async forget(clientId) {
      const client = { id: clientId };
      await persistence.cleanSubscriptions(client);
      const queued: unknown[] = [];
      for await (const packet of persistence.outgoingStream(client)) queued.push(packet);
      for (const packet of queued) await persistence.outgoingClearMessageId(client, packet);
      await persistence.delWill({ id: clientId, brokerId: deps.aedes().id });
      if (typeof persistence.cleanIncoming === 'function') await persistence.cleanIncoming(client);
    },
    start: async () => undefined,
    stop: async () => undefined,
  };
}
