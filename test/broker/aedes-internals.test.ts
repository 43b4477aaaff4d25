/**
 * broker/src/aedes-internals.ts against the installed aedes and aedes-persistence: each accessor
 * exercised on a plain aedes with real mqtt.js clients on port 0. When an upgrade moves a field
 * the broker relies on, this file fails, naming the accessor.
 */
import { readFileSync } from 'node:fs';
import type { Aedes, AedesOptions, Client } from 'aedes';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import {
  AEDES_VERSION,
  allClients,
  allocateMessageId,
  clientById,
  grantedQos,
  onClientPacket,
  connectingWill,
  dropWill,
  keepStoredSessionOnClose,
  memoryPersistence,
  onAedesError,
  type BrokerPersistence,
} from '../../broker/src/aedes-internals.ts';
import { limitOfflineQueues } from '../../broker/src/offline-queue-limit.ts';
import { waitFor } from './helpers/broker-fixture.ts';
import { plainAedes } from './helpers/plain-aedes.ts';

const json = (p: string) => JSON.parse(readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8'));

const plain = plainAedes();
const start = (opts: AedesOptions) => plain.start(opts);

/** A real persistence that records which of its methods aedes called, and for which client id. */
function recording(inner: BrokerPersistence): { persistence: BrokerPersistence; calls: string[] } {
  const calls: string[] = [];
  const persistence = new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop === 'setup') return value.bind(target); // aedes insists on an async function here
      return (...args: unknown[]) => {
        const client = args[0] as { id?: string } | undefined;
        calls.push(`${String(prop)}:${client?.id ?? ''}`);
        return value.apply(target, args);
      };
    },
  });
  return { persistence, calls };
}

describe('the pinned versions', () => {
  it('aedes and aedes-persistence are the versions the adapter was written against', () => {
    expect(json('node_modules/aedes/package.json').version).toBe(AEDES_VERSION);
    expect(json('broker/package.json').dependencies.aedes).toBe(AEDES_VERSION);
    expect(json('node_modules/aedes-persistence/package.json').version).toBe(json('broker/package.json').dependencies['aedes-persistence']);
  });
});

describe('aedes internals the broker reads and writes', () => {
  it('clientById and allClients find a client by its id, from its acceptance until it closes', async () => {
    const { aedes, url } = await start({});
    let atAcceptance: Client | undefined;
    aedes.on('client', (client) => (atAcceptance = clientById(aedes, client.id)));
    const c = await mqtt.connectAsync(url, { clientId: 'probe-1', reconnectPeriod: 0 });
    expect(atAcceptance?.id).toBe('probe-1');
    expect(clientById(aedes, 'probe-1')?.closed).toBe(false);
    expect(allClients(aedes).map((x) => x.id)).toEqual(['probe-1']);
    expect(clientById(aedes, 'someone-else')).toBeUndefined();
    await c.endAsync();
    await waitFor(() => clientById(aedes, 'probe-1') === undefined);
    expect(allClients(aedes)).toEqual([]);
  });

  it('connectingWill is the will of the CONNECT being authenticated, null without one', async () => {
    const seen: ({ topic: string } | null)[] = [];
    const { url } = await start({
      authenticate(client, _u, _p, done) {
        seen.push(connectingWill(client));
        done(null, true);
      },
    });
    const a = await mqtt.connectAsync(url, { clientId: 'with-will', reconnectPeriod: 0, will: { topic: 'devices/x/state', payload: Buffer.from('gone'), qos: 0, retain: false } });
    const b = await mqtt.connectAsync(url, { clientId: 'no-will', reconnectPeriod: 0 });
    await Promise.all([a.endAsync(), b.endAsync()]);
    expect(seen[0]?.topic).toBe('devices/x/state');
    expect(seen[1]).toBeNull();
  });

  it('dropWill keeps a will from being published when the server closes the client', async () => {
    const { aedes, url } = await start({});
    const published: string[] = [];
    await new Promise<void>((resolve) => aedes.subscribe('devices/+/state', (packet, cb) => (published.push(packet.topic), cb()), resolve));
    const will = { topic: 'devices/a/state', payload: Buffer.from('gone'), qos: 0 as const, retain: false };
    const kept = await mqtt.connectAsync(url, { clientId: 'keeps-will', reconnectPeriod: 0, will });
    const dropped = await mqtt.connectAsync(url, { clientId: 'drops-will', reconnectPeriod: 0, will: { ...will, topic: 'devices/b/state' } });
    expect(dropWill(clientById(aedes, 'drops-will')!)).toBe(true);
    expect(dropWill(clientById(aedes, 'drops-will')!)).toBe(false);
    clientById(aedes, 'drops-will')!.close(); // first: a will it still had would be published first
    clientById(aedes, 'keeps-will')!.close();
    await waitFor(() => published.includes('devices/a/state'));
    // a sentinel published after both closes arrives after anything they published
    aedes.publish({ cmd: 'publish', topic: 'devices/z/state', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, () => undefined);
    await waitFor(() => published.includes('devices/z/state'));
    expect(published).toEqual(['devices/a/state', 'devices/z/state']);
    kept.end(true);
    dropped.end(true);
  });

  it('keepStoredSessionOnClose stops aedes from wiping the QoS 2 store of a refused clean client id', async () => {
    const { persistence, calls } = recording(memoryPersistence());
    const { url } = await start({
      persistence,
      authenticate(client, _u, password, done) {
        if (password?.toString() === 'keep') keepStoredSessionOnClose(client);
        done(Object.assign(new Error('refused'), { returnCode: 4 }) as never, null);
      },
    });
    for (const [id, password] of [['wiped-1', 'x'], ['kept-1', 'keep']]) {
      const err = await mqtt.connectAsync(url, { clientId: id, username: 'u', password, clean: true, reconnectPeriod: 0 }).then(() => null, (e: { code?: number }) => e);
      expect(err?.code).toBe(4);
    }
    await waitFor(() => calls.includes('cleanIncoming:wiped-1'));
    expect(calls).not.toContain('cleanIncoming:kept-1');
  });

  it('onAedesError hears the errors aedes emits (here: a persistence that fails while clearing wills)', async () => {
    const inner = memoryPersistence() as BrokerPersistence & { streamWill(): unknown };
    const failing = new Proxy(inner, {
      get: (target, prop) => (prop === 'streamWill' ? () => { throw new Error('store down'); } : Reflect.get(target, prop, target)),
    });
    const errors: string[] = [];
    const { aedes } = await start({ persistence: failing, heartbeatInterval: 20 });
    onAedesError(aedes, (err) => errors.push(err.message));
    await waitFor(() => errors.length > 0);
    expect(errors[0]).toBe('store down');
  });
});

describe('the persistence aedes is handed', () => {
  it('the memory persistence and the offline-queue decorator over it pass aedes setup and keep the promise API', async () => {
    const bounded = limitOfflineQueues(memoryPersistence(), { max: 1, isOnline: () => false, onDrop: () => undefined });
    expect((bounded as unknown as { setup: () => unknown }).setup.constructor.name).toBe('AsyncFunction'); // aedes checks this
    expect(typeof bounded.cleanIncoming).toBe('function'); // aedes feature-detects it
    const { aedes } = await start({ persistence: bounded });
    await new Promise<void>((resolve, reject) =>
      aedes.publish({ cmd: 'publish', topic: 'devices/a/config', payload: Buffer.from('{}'), qos: 1, retain: true, dup: false }, (e) => (e ? reject(e) : resolve())),
    );
    const retained: string[] = [];
    for await (const packet of bounded.createRetainedStream('devices/+/config')) retained.push(packet.topic);
    expect(retained).toEqual(['devices/a/config']);
    await expect(bounded.outgoingEnqueue({ clientId: 'off-1' }, { cmd: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 1, messageId: 1, brokerId: aedes.id, brokerCounter: 1 })).resolves.toBeUndefined();
    expect(bounded.queued('off-1')).toBe(1);
  });
});

describe('tracking a delivery to its PUBACK (the Cloud IoT Core config and commands)', () => {
  it('allocateMessageId follows the client’s own sequence, and a forwarded packet keeps the id it is given', async () => {
    const ids: number[] = [];
    const { aedes, url } = await start({
      authorizeForward(client, packet) {
        if (packet.topic === 'tracked') {
          const id = allocateMessageId(client);
          ids.push(id);
          return Object.assign(packet, { messageId: id });
        }
        return packet;
      },
    });
    const c = await mqtt.connectAsync(url, { clientId: 'probe-ack', reconnectPeriod: 0 });
    const client = clientById(aedes, 'probe-ack') as Client;
    const acked: number[] = [];
    onClientPacket(client, (p) => {
      if (p.cmd === 'puback') acked.push(p.messageId as number);
    });
    await c.subscribeAsync('tracked', { qos: 1 });
    await c.subscribeAsync('other', { qos: 1 });
    expect(grantedQos(client, 'tracked')).toBe(1);
    expect(grantedQos(client, 'tracked/#')).toBeNull();
    const received: number[] = [];
    c.on('message', (_t, _p, packet) => received.push(packet.messageId as number));
    aedes.publish({ cmd: 'publish', topic: 'tracked', payload: Buffer.from('a'), qos: 1, retain: false, dup: false }, () => {});
    aedes.publish({ cmd: 'publish', topic: 'other', payload: Buffer.from('b'), qos: 1, retain: false, dup: false }, () => {});
    aedes.publish({ cmd: 'publish', topic: 'tracked', payload: Buffer.from('c'), qos: 1, retain: false, dup: false }, () => {});
    await waitFor(() => acked.length === 3);
    // the tracked deliveries carried the ids allocated for them; aedes's own delivery took another one
    expect(received.filter((id) => ids.includes(id))).toEqual(ids);
    expect(new Set(received).size).toBe(3);
    expect(acked.sort()).toEqual([...received].sort());
    await c.endAsync();
  });

  it('the identifier wraps from 65535 to 1, as aedes’s own', async () => {
    const { aedes, url } = await start({});
    const c = await mqtt.connectAsync(url, { clientId: 'probe-wrap', reconnectPeriod: 0 });
    const client = clientById(aedes, 'probe-wrap') as Client;
    (client as unknown as { _nextId: number })._nextId = 65_535;
    expect([allocateMessageId(client), allocateMessageId(client)]).toEqual([65_535, 1]);
    await c.endAsync();
  });
});
