/**
 * The hunks of patches/aedes+1.2.0.patch (docs/architecture.md §Patches), each against the real
 * broker with a store that is slow (or failing) the way a networked one is, and no Redis: hunks 1,
 * 2 and 3 fail on stock aedes 1.2.0. The last two tests pin what aedes's queue read at the end of a
 * CONNECT must keep (issue 12 tried a cheaper read and withdrew it: docs/architecture.md §Patches).
 */
import { Readable } from 'node:stream';
import mqemitter from 'mqemitter';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryPersistence } from '../../broker/src/aedes-internals.ts';
import { startBroker, type BrokerFixture } from './helpers/broker-fixture.ts';

let fx: BrokerFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

const SINK_ACL = { publish: [], subscribe: ['devices/+/telemetry', 'devices/+/state'] };

describe('aedes patch', () => {
  it('hunk 1: a QoS 1 PUBACK goes out only after the message is in the offline queues', async () => {
    const store = memoryPersistence();
    const events: string[] = [];
    const enqueue = store.outgoingEnqueueCombi.bind(store);
    // a networked store takes a while: the enqueue finishes 50 ms after it started
    store.outgoingEnqueueCombi = async (subs, packet) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      await enqueue(subs, packet);
      if (subs.length > 0) events.push('stored');
    };
    fx = await startBroker({}, undefined, { persistence: store });
    const sink = await fx.service('sink', SINK_ACL);
    const offline = await fx.connect(sink.id, await sink.token(), { clean: false });
    await offline.subscribeAsync('devices/+/telemetry', { qos: 1 });
    await offline.endAsync();
    const dev = await fx.device('thermo-1');
    const device = await fx.connect(dev.id, await dev.token());
    await device.publishAsync('devices/thermo-1/telemetry', '{"t":21}', { qos: 1 });
    events.push('puback');
    // stock aedes: ['puback', 'stored'] (the PUBACK is written before the hand-off starts)
    expect(events).toEqual(['stored', 'puback']);
    const resumed = await fx.connect(sink.id, await sink.token(), { clean: false });
    const got = await new Promise<string>((resolve) => resumed.once('message', (_t, p) => resolve(p.toString())));
    expect(got).toBe('{"t":21}');
  });

  it('hunk 2: a SUBSCRIBE with two filters on a persistent session gets its SUBACK from a broadcasting store', async () => {
    // the clustered stores announce subscription changes on the emitter and wait for their own
    // announcement; an emitter that delivers a little later, as a networked one does
    const mq = mqemitter({ matchEmptyLevels: true });
    const emit = mq.emit.bind(mq);
    mq.emit = ((packet: never, cb?: () => void) => void setTimeout(() => emit(packet, cb), 5)) as typeof mq.emit;
    fx = await startBroker({}, undefined, { persistence: memoryPersistence({ broadcastSubscriptions: true }), mq });
    const sink = await fx.service('sink', SINK_ACL);
    const client = await fx.connect(sink.id, await sink.token(), { clean: false });
    // stock aedes: no SUBACK ever (each filter's store call waited for the other's announcement)
    const granted = await Promise.race([
      client.subscribeAsync(['devices/+/telemetry', 'devices/+/state'], { qos: 1 }),
      new Promise<'no suback'>((resolve) => setTimeout(() => resolve('no suback'), 3000).unref()),
    ]);
    expect(granted).not.toBe('no suback');
    expect((granted as { qos: number }[]).map((g) => g.qos)).toEqual([1, 1]);
  });

  it('hunk 3: a store whose delWill fails at CONNECT leaves no unhandled rejection, and the CONNECT goes on', async () => {
    const store = memoryPersistence();
    // what a store on Redis does when its connection closes under the call
    store.delWill = () => Promise.reject(new Error('Connection is closed.'));
    const unhandled: unknown[] = [];
    const collect = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', collect);
    try {
      fx = await startBroker({}, undefined, { persistence: store });
      const dev = await fx.device('thermo-1');
      const will = { topic: 'devices/thermo-1/state', payload: Buffer.from('{"lost":true}'), qos: 1 as const, retain: false };
      const client = await fx.connect(dev.id, await dev.token(), { will });
      expect(client.connected).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.off('unhandledRejection', collect);
    }
    // stock aedes: [Error: Connection is closed.] (the rejection passed on by the CONNECT's `.finally`)
    expect(unhandled).toEqual([]);
  });

  it('the CONNECT queue read: a persistent session gets its queued messages in order on reconnect', async () => {
    fx = await startBroker({}, undefined, { persistence: memoryPersistence() });
    const sink = await fx.service('sink', SINK_ACL);
    const first = await fx.connect(sink.id, await sink.token(), { clean: false });
    await first.subscribeAsync('devices/+/telemetry', { qos: 1 });
    await first.endAsync();
    const dev = await fx.device('thermo-1');
    const device = await fx.connect(dev.id, await dev.token());
    for (let i = 0; i < 20; i++) await device.publishAsync('devices/thermo-1/telemetry', String(i), { qos: 1 });
    const got: string[] = [];
    // the listener is on before the CONNECT: the queue follows the CONNACK at once
    const back = mqtt.connect(fx.url, { clientId: sink.id, username: 'x', password: await sink.token(), protocolVersion: 4, reconnectPeriod: 0, clean: false });
    back.on('error', () => undefined);
    await new Promise<void>((resolve) =>
      back.on('message', (_t, payload) => {
        got.push(payload.toString());
        if (got.length === 20) resolve();
      }),
    );
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    await back.endAsync();
  });

  it('the CONNECT queue read: a store whose queue fails closes the connection (no CONNECT left hanging)', async () => {
    const store = memoryPersistence();
    store.outgoingStream = () =>
      new Readable({
        objectMode: true,
        read() {
          this.destroy(new Error('store unreachable'));
        },
      });
    fx = await startBroker({}, undefined, { persistence: store });
    const dev = await fx.device('thermo-1');
    const client = await fx.connect(dev.id, await dev.token(), { reconnectPeriod: 0 });
    await new Promise<void>((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
    expect(client.connected).toBe(false);
  });
});
