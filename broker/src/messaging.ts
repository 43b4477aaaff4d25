import { isDeviceId, isValidTopicFilter, isValidTopicName } from '@latchkey/device-sdk/protocol';
import type { Aedes, AedesPublishPacket } from 'aedes';

/**
 * The broker side of provisioning's DeviceMessagingPort (provisioning/src/http/messaging-port.ts),
 * restated structurally: the broker never imports provisioning (architecture.md §Import rules).
 */
export interface DeviceMessaging {
  /** The device has a live session, on this node or any other of the cluster. */
  isOnline(deviceId: string): Promise<boolean>;
  /** Which of these devices have a live session anywhere (one round trip in a cluster). */
  onlineAmong(deviceIds: readonly string[]): Promise<ReadonlySet<string>>;
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): () => void;
  /**
   * protocol.md §Cloud IoT Core commands: the bytes on `/devices/{id}/commands[/{subfolder}]` of the device's Cloud IoT
   * Core session; `delivered` once PUBACKed (QoS 1) or written (QoS 0), `offline` when no session of
   * this device is subscribed to its commands, `timeout` when no PUBACK came within `timeoutMs`.
   */
  sendGcpCommand?(deviceId: string, subfolder: string | undefined, payload: Buffer, timeoutMs: number): Promise<GcpCommandOutcome>;
}

export type GcpCommandOutcome = 'delivered' | 'offline' | 'timeout';

interface MessagingDeps {
  readonly aedes: () => Aedes | null;
  /** Live sessions of these client ids, anywhere. */
  readonly onlineAmong: (clientIds: readonly string[]) => Promise<Set<string>>;
  readonly onHandlerError: (err: unknown, filter: string) => void;
}

/**
 * Messaging for the HTTP API: publish as the backend (no client, so no ACL hook runs — the backend
 * may reach every device) and receive what clients publish, on whichever node of a cluster they
 * are connected to: a handler is a listener on aedes's emitter (mqemitter-redis carries it across
 * nodes), not on this node's `publish` event, which sees only its own clients. Only client
 * publishes reach handlers (aedes marks them with the client id). A publish waits until every
 * subscription made before it is in place, so a reply cannot overtake its listener.
 *
 * @example
 * ```ts
 * await broker.messaging.publish('devices/thermo-1/config', Buffer.from('{"version":2,"config":{}}'), { qos: 1, retain: true });
 * const stop = broker.messaging.subscribe('devices/+/replies/#', (topic, payload) => { ... });
 * ```
 */
export function createMessaging(deps: MessagingDeps): DeviceMessaging {
  /** subscriptions still being set up (a round trip to Redis in a cluster) */
  const pending = new Set<Promise<void>>();
  const devicesOnly = (ids: readonly string[]) => ids.filter((id) => typeof id === 'string' && isDeviceId(id));
  return {
    async isOnline(deviceId) {
      if (typeof deviceId !== 'string' || !isDeviceId(deviceId)) return false;
      return (await deps.onlineAmong([deviceId])).has(deviceId);
    },
    async onlineAmong(deviceIds) {
      if (!Array.isArray(deviceIds)) throw new TypeError('deviceIds must be an array');
      return deps.onlineAmong(devicesOnly(deviceIds));
    },
    publish(topic, payload, opts) {
      // misuse throws at once; the publish itself settles the promise
      if (!isValidTopicName(topic) || topic.startsWith('$')) throw new TypeError('topic must be a valid MQTT topic name outside $');
      if (!Buffer.isBuffer(payload)) throw new TypeError('payload must be a Buffer');
      if (opts?.qos !== 0 && opts?.qos !== 1) throw new TypeError('qos must be 0 or 1');
      const packet = { cmd: 'publish' as const, topic, payload, qos: opts.qos, retain: opts.retain === true, dup: false };
      return Promise.all(pending).then(
        () =>
          new Promise<void>((resolve, reject) => {
            const aedes = deps.aedes();
            if (aedes === null) throw new Error('the broker is not running');
            aedes.publish(packet, (err) => (err ? reject(err) : resolve()));
          }),
      );
    },
    subscribe(filter, handler) {
      if (!isValidTopicFilter(filter) || filter.startsWith('$')) throw new TypeError('filter must be a valid MQTT topic filter outside $');
      if (typeof handler !== 'function') throw new TypeError('handler must be a function');
      const aedes = deps.aedes();
      if (aedes === null) throw new Error('the broker is not running');
      const listener = (packet: AedesPublishPacket & { clientId?: string }, done: () => void): void => {
        done();
        if (typeof packet.clientId !== 'string') return; // the backend's own publishes
        try {
          handler(packet.topic, packet.payload as Buffer);
        } catch (err) {
          deps.onHandlerError(err, filter);
        }
      };
      const ready = new Promise<void>((resolve) => aedes.subscribe(filter, listener, () => resolve()));
      pending.add(ready);
      void ready.then(() => pending.delete(ready));
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        void ready.then(() => aedes.unsubscribe(filter, listener, () => undefined));
      };
    },
  };
}
