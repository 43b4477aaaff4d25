/**
 * Every reach into aedes beyond its typed API, in one place, for the pinned aedes 1.2.0 and
 * aedes-persistence 11.0.0. test/broker/aedes-internals.test.ts exercises each accessor against the
 * installed versions with real clients, so an upgrade that moves one of these fields fails there,
 * loudly, instead of quietly disabling a rule in the broker.
 */
import memory from 'aedes-persistence';
import type { Aedes, Client } from 'aedes';

/** The aedes version these accessors were written against (broker/package.json pins it). */
export const AEDES_VERSION = '1.2.0';

/**
 * The persistence calls the broker makes, promise style. aedes 1.2 calls its persistence without
 * callbacks and awaits the promise; aedes-persistence 11's typings still describe callbacks only.
 */
export interface BrokerPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: unknown): Promise<void>;
  /** Resolves the removed packet, or undefined when none had that message id. */
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>;
  outgoingStream(client: { id: string }): AsyncIterable<unknown>;
  cleanSubscriptions(client: { id: string }): Promise<unknown>;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
  /** aedes feature-detects it; a persistence may lack it */
  cleanIncoming?: ((client: { id: string }) => Promise<unknown>) | undefined;
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer }>;
  /** loads what the store holds (aedes awaits it in `listen`; a clustered store subscribes to subscription broadcasts) */
  setup(aedes: Aedes): Promise<void>;
  destroy(): Promise<void>;
  /** the wills of the brokers not in `alive` (aedes replays them every 4 heartbeats) */
  streamWill(alive: Readonly<Record<string, number>>): AsyncIterable<StoredWill>;
}

/** A will as a store keeps it: the packet, and whose it is. */
export interface StoredWill {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  clientId: string;
  brokerId: string;
}

/**
 * aedes-persistence's in-memory store, the default (a Redis-backed one can be handed in instead).
 * The package is CommonJS (`module.exports = factory`, which aedes imports the same way), while its
 * typings declare an ES default export. `broadcastSubscriptions` makes it announce subscription
 * changes on the emitter and wait for its own announcement, as the clustered stores do.
 */
export function memoryPersistence(opts: { broadcastSubscriptions?: boolean } = {}): BrokerPersistence {
  return (memory as unknown as (o: object) => BrokerPersistence)(opts);
}

/** Fields aedes keeps on its instance and its clients that its typings leave out. */
interface AedesFields {
  /** by client id; set once a CONNECT is accepted, before its CONNACK is written */
  readonly clients: Record<string, Client | undefined>;
}
interface ClientFields {
  /** the will of an accepted client */
  will: unknown;
  /** the will of a CONNECT while it is authenticated (lib/handlers/connect.js) */
  _will: { topic: string } | null | undefined;
  /** from the CONNECT; aedes wipes the QoS 2 store of a clean client's id when it closes */
  clean: boolean;
}

const fieldsOf = (aedes: Aedes) => aedes as unknown as AedesFields;
const clientFields = (client: Client) => client as unknown as ClientFields;

/**
 * The client aedes holds for `clientId`, if any: registered once its CONNECT is accepted, before
 * the CONNACK is written (so `connected` may still be false), removed when it closes.
 *
 * @example
 * ```ts
 * const online = clientById(aedes, 'thermo-1')?.closed === false;
 * ```
 */
export function clientById(aedes: Aedes, clientId: string): Client | undefined {
  return fieldsOf(aedes).clients[clientId];
}

/** Every client aedes holds. */
export function allClients(aedes: Aedes): Client[] {
  return Object.values(fieldsOf(aedes).clients).filter((c): c is Client => c !== undefined);
}

/**
 * The will a CONNECT carries, while the `authenticate` hook runs (aedes only moves it to the
 * client once the connection is accepted).
 *
 * @example
 * ```ts
 * const will = connectingWill(client); // { topic: 'devices/thermo-1/state', … } or null
 * ```
 */
export function connectingWill(client: Client): { topic: string } | null {
  return clientFields(client)._will ?? null;
}

/**
 * Forgets a client's will, accepted or still connecting, so that closing the client does not
 * publish it. Returns whether an accepted will was there (its stored copy is then the
 * persistence's to delete).
 */
export function dropWill(client: Client): boolean {
  const c = clientFields(client);
  const had = Boolean(c.will);
  c.will = null;
  c._will = null;
  return had;
}

/**
 * Makes aedes treat a client as not clean when it closes: it then leaves the QoS 2 state stored
 * under the client's id alone ([MQTT-3.1.2-6] applies to a session that was accepted).
 */
export function keepStoredSessionOnClose(client: Client): void {
  clientFields(client).clean = false;
}

/** aedes emits `error` (for instance a failing persistence); its typings do not list the event. */
export function onAedesError(aedes: Aedes, listener: (err: Error) => void): void {
  (aedes as unknown as NodeJS.EventEmitter).on('error', listener);
}

interface PacketFields {
  /** the packet identifier aedes gives its next QoS 1 delivery to this client (lib/qos-packet.js) */
  _nextId: number;
  /** mqtt-packet's parser of the client's stream; emits every packet the client sends */
  _parser: NodeJS.EventEmitter;
}

/**
 * Takes the next packet identifier from the client's own sequence, exactly as aedes's QoSPacket does
 * (1..65535, wrapping to 1), so an identifier the broker chooses for a delivery it tracks never
 * collides with one aedes is about to give another. A packet returned from `authorizeForward` with
 * this `messageId` is delivered under it (lib/client.js keeps an original's messageId).
 *
 * @example
 * ```ts
 * packet.messageId = allocateMessageId(client); // in authorizeForward, for a delivery whose PUBACK matters
 * ```
 */
export function allocateMessageId(client: Client): number {
  const c = client as unknown as PacketFields;
  const id = c._nextId;
  c._nextId = id >= 65_535 ? 1 : id + 1;
  return id;
}

/**
 * Calls `listener` with every packet the client sends, as aedes's parser reads it (a PUBACK among
 * them: aedes's own `ack` event carries the stored original, which a clean session does not have).
 * Returns the function that removes the listener.
 *
 * @example
 * ```ts
 * const stop = onClientPacket(client, (p) => { if (p.cmd === 'puback') acked(p.messageId); });
 * ```
 */
export function onClientPacket(client: Client, listener: (packet: { cmd: string; messageId?: number }) => void): () => void {
  const parser = (client as unknown as PacketFields)._parser;
  parser.on('packet', listener);
  return () => parser.removeListener('packet', listener);
}

/** The QoS the client was granted for exactly this filter, or null when it has no such subscription. */
export function grantedQos(client: Client, filter: string): number | null {
  const sub = (client as unknown as { subscriptions: Record<string, { qos: number } | undefined> }).subscriptions[filter];
  return sub === undefined ? null : sub.qos;
}
