/**
 * A real in-process aedes broker on 127.0.0.1 port 0 implementing provisioning's
 * DeviceMessagingPort, so command/config routes are tested against real MQTT, no fakes.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AedesPublishPacket } from 'aedes';
import type { DeviceMessagingPort } from '../../provisioning/src/http/messaging-port.ts';

export interface TestBroker {
  url: string;
  aedes: Aedes;
  messaging: DeviceMessagingPort;
  /** retained payloads currently stored for `topic` */
  retained(topic: string): Promise<Buffer[]>;
  close(): Promise<void>;
}

export async function startBroker(): Promise<TestBroker> {
  const aedes = await Aedes.createBroker();
  const online = new Map<string, number>();
  aedes.on('client', (c) => online.set(c.id, (online.get(c.id) ?? 0) + 1));
  aedes.on('clientDisconnect', (c) => {
    const n = (online.get(c.id) ?? 1) - 1;
    if (n <= 0) online.delete(c.id);
    else online.set(c.id, n);
  });
  const server: Server = createServer(aedes.handle as (s: import('node:net').Socket) => void);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const messaging: DeviceMessagingPort = {
    isOnline: (id) => online.has(id),
    publish: (topic, payload, opts) =>
      new Promise((resolve, reject) =>
        aedes.publish({ cmd: 'publish', topic, payload, qos: opts.qos, retain: opts.retain, dup: false }, (err) => (err ? reject(err) : resolve())),
      ),
    subscribe(filter, handler) {
      const deliver = (packet: AedesPublishPacket, cb: () => void) => {
        handler(packet.topic, Buffer.from(packet.payload as Buffer));
        cb();
      };
      aedes.subscribe(filter, deliver, () => {});
      return () => aedes.unsubscribe(filter, deliver, () => {});
    },
  };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    aedes,
    messaging,
    async retained(topic) {
      const out: Buffer[] = [];
      const persistence = (aedes as unknown as { persistence: { createRetainedStream(p: string): AsyncIterable<{ payload: Buffer }> } }).persistence;
      for await (const packet of persistence.createRetainedStream(topic)) out.push(Buffer.from(packet.payload));
      return out;
    },
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
