/**
 * The two hunks of patches/aedes+1.2.0.patch (docs/architecture.md §Patches), each against the real
 * broker with a store that is slow the way a networked one is, and no Redis: both fail on stock
 * aedes 1.2.0.
 */
import mqemitter from 'mqemitter';
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
});
