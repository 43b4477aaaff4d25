/**
 * Every Redis key name the broker uses: aedes-persistence-redis 12.0.0's, whose layout latchkey's
 * scripts read and clean (its `asyncPersistence.js`; test/cluster/redis-keys.test.ts enqueues through
 * the real store and checks these names, so an upgrade that moves one fails there), and latchkey's
 * own, all under `lk:`. One Redis database per deployment, and no key prefix: the scripts build key
 * names from values (which is also why Redis Cluster is not supported, docs/operations.md).
 */

/** The store encodes client ids in key names with encodeURIComponent (a `:` never appears). */
const enc = (clientId: string): string => encodeURIComponent(clientId);

/** aedes-persistence-redis 12 (asyncPersistence.js). */
export const STORE_KEYS = {
  /** list of the packet keys queued for a client, oldest first */
  outgoing: (clientId: string) => `outgoing:${enc(clientId)}`,
  /** hash topic → subscription of a persistent client */
  subscriptions: (clientId: string) => `client:${enc(clientId)}`,
  /** hash messageId → inbound QoS 2 packet */
  incoming: (clientId: string) => `incoming:${enc(clientId)}`,
  /** list of will keys (`will:<brokerId>:<client>`) */
  wills: 'will',
  /** the suffix every will key of a client ends with */
  willSuffix: (clientId: string) => `:${enc(clientId)}`,
  /** `packet:<brokerId>:<counter>` holds a queued packet, shared by its subscribers' lists */
  packetPrefix: 'packet:',
} as const;

/** latchkey's own keys. */
export const LK_KEYS = {
  /** a node incarnation's liveness: present while it heartbeats (value: its node id and start time) */
  node: (aedesId: string) => `lk:node:${aedesId}`,
  /** the prefix of `node`, for scripts that read a node id from a value */
  nodePrefix: 'lk:node:',
  /** set of node incarnations that have started and not yet been found dead and cleaned up */
  nodes: 'lk:nodes',
  /** where a client's session lives: `<aedesId>:<session number>`, counted only while that node is alive */
  presence: (clientId: string) => `lk:presence:${clientId}`,
  /** QoS 1 messages admitted into a client's queue but not yet pushed (the bound's reservation) */
  queuePending: (clientId: string) => `lk:qpending:${clientId}`,
  /** a used token id (requireJti), until the token expires */
  jti: (principal: string, jti: string) => `lk:jti:${principal}:${jti}`,
  /** refused connects from one source address in the current window */
  authFailures: (address: string) => `lk:authfail:${address}`,
  /** one surviving node publishes a dead node's will: the one that set this first */
  willClaim: (brokerId: string, clientId: string) => `lk:will-claim:${brokerId}:${enc(clientId)}`,
} as const;

/** Emitter topics the nodes tell each other on (closed to clients, like every `$` topic). */
export const LK_TOPICS = {
  /** `{ address, remainingMs }`: an address reached the refused-connect limit */
  throttled: '$SYS/latchkey/throttled',
} as const;
