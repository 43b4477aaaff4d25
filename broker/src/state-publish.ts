import { deviceTopics, type Clock } from '@latchkey/device-sdk/protocol';
import type { AedesPublishPacket } from 'aedes';
import type { BrokerRegistryPort } from './registry-port.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * protocol.md §Topics: `devices/{id}/state` carries the device's current state as JSON; the
 * registry keeps the last one. A signed message (protocol.md §Signed messages) that verifies with
 * the device's keys is stored by its body. A payload that is neither is not stored (logged); the
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
  deps: {
    registry: Pick<BrokerRegistryPort, 'saveState'>;
    clock: Clock;
    log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
    /** the body of a signed message that verified, else null */
    unwrapSigned: (payload: Buffer) => Promise<Buffer | null>;
  },
): void {
  if (packet.topic !== deviceTopics(deviceId).state) return;
  const payload = packet.payload as Buffer;
  const at = deps.clock();
  const save = (text: string) =>
    deps.registry.saveState(deviceId, text, at).catch((err: unknown) => deps.log.error({ err, deviceId }, 'saving device state failed'));
  const plain = jsonText(payload);
  if (plain !== null) {
    void save(plain);
    return;
  }
  void deps.unwrapSigned(payload).then(
    (body) => {
      const text = jsonText(body);
      if (text === null) deps.log.warn({ deviceId }, 'state payload is neither UTF-8 JSON nor a signed message of it; not stored');
      else void save(text);
    },
    (err: unknown) => deps.log.error({ err, deviceId }, 'verifying a signed state report failed'),
  );
}

function jsonText(bytes: Buffer | null): string | null {
  if (bytes === null) return null;
  try {
    const text = utf8.decode(bytes);
    JSON.parse(text);
    return text;
  } catch {
    return null;
  }
}
