import { deviceTopics, type Clock } from '@latchkey/device-sdk/protocol';
import type { AedesPublishPacket } from 'aedes';
import type { BrokerRegistryPort } from './registry-port.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * protocol.md §Topics: `devices/{id}/state` carries the device's current state as JSON; the
 * registry keeps the last one. A payload that is not UTF-8 JSON is not stored (logged); the
 * message itself was already authorized and is delivered like any other.
 *
 * @example
 * ```ts
 * aedes.on('publish', (packet, client) => onStatePublish(deviceId, packet, { registry, clock, log }));
 * ```
 */
export function onStatePublish(
  deviceId: string,
  packet: AedesPublishPacket,
  deps: { registry: Pick<BrokerRegistryPort, 'saveState'>; clock: Clock; log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void } },
): void {
  if (packet.topic !== deviceTopics(deviceId).state) return;
  let text: string;
  try {
    text = utf8.decode(packet.payload as Buffer);
    JSON.parse(text);
  } catch {
    deps.log.warn({ deviceId }, 'state payload is not UTF-8 JSON; not stored');
    return;
  }
  deps.registry.saveState(deviceId, text, deps.clock()).catch((err: unknown) => deps.log.error({ err, deviceId }, 'saving device state failed'));
}
