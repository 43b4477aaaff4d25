import { isValidTopicFilter, isValidTopicName, topicMatches } from '@latchkey/device-sdk/protocol';
import type { Aedes, AedesPublishPacket, Client } from 'aedes';

/**
 * The broker side of provisioning's DeviceMessagingPort (provisioning/src/http/messaging-port.ts),
 * restated structurally: the broker never imports provisioning (architecture.md §Import rules).
 */
export interface DeviceMessaging {
  isOnline(deviceId: string): boolean;
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
  /** The live, authenticated device session using this client id, if any. */
  readonly isDeviceOnline: (deviceId: string) => boolean;
  readonly onHandlerError: (err: unknown, filter: string) => void;
}

/**
 * In-process messaging for the HTTP API: publish as the backend (no client, so no ACL hook
 * runs — the backend may reach every device) and receive what clients publish.
 *
 * @example
 * ```ts
 * await broker.messaging.publish('devices/thermo-1/config', Buffer.from('{"version":2,"config":{}}'), { qos: 1, retain: true });
 * const stop = broker.messaging.subscribe('devices/+/replies/#', (topic, payload) => { ... });
 * ```
 */
export function createMessaging(deps: MessagingDeps): DeviceMessaging & { dispatch(packet: AedesPublishPacket, client: Client | null): void } {
  const handlers = new Set<{ filter: string; handler: (topic: string, payload: Buffer) => void }>();
  return {
    isOnline(deviceId) {
      return typeof deviceId === 'string' && deps.isDeviceOnline(deviceId);
    },
    publish(topic, payload, opts) {
      if (!isValidTopicName(topic) || topic.startsWith('$')) throw new TypeError('topic must be a valid MQTT topic name outside $');
      if (!Buffer.isBuffer(payload)) throw new TypeError('payload must be a Buffer');
      if (opts?.qos !== 0 && opts?.qos !== 1) throw new TypeError('qos must be 0 or 1');
      const aedes = deps.aedes();
      if (aedes === null) return Promise.reject(new Error('the broker is not running'));
      return new Promise((resolve, reject) => {
        aedes.publish({ cmd: 'publish', topic, payload, qos: opts.qos, retain: opts.retain === true, dup: false }, (err) =>
          err ? reject(err) : resolve(),
        );
      });
    },
    subscribe(filter, handler) {
      if (!isValidTopicFilter(filter)) throw new TypeError('filter must be a valid MQTT topic filter');
      if (typeof handler !== 'function') throw new TypeError('handler must be a function');
      const entry = { filter, handler };
      handlers.add(entry);
      return () => {
        handlers.delete(entry);
      };
    },
    /** Called for every PUBLISH; delivers client publishes to matching handlers. */
    dispatch(packet, client) {
      if (client === null || handlers.size === 0) return;
      for (const { filter, handler } of handlers) {
        if (!topicMatches(filter, packet.topic)) continue;
        try {
          handler(packet.topic, packet.payload as Buffer);
        } catch (err) {
          deps.onHandlerError(err, filter);
        }
      }
    },
  };
}
