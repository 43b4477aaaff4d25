import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceClient, DeviceClientError, ServiceClient, privateKeyToPem } from '@latchkey/device-sdk';
import { closeAll, countingProxy, newIdentity, sleep, startStack, waitFor, type CountingProxy, type Stack } from './helpers/stack.ts';

let stack: Stack;
let proxy: CountingProxy;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  stack = await startStack({ authFailureLimit: 0 });
  proxy = await countingProxy(stack.port);
});

afterEach(async () => {
  await closeAll(closers);
  await proxy.close();
  await stack.close();
});

async function device(o: Parameters<typeof DeviceClient.connect>[0]): Promise<DeviceClient> {
  const c = await DeviceClient.connect(o);
  closers.push(() => c.close());
  return c;
}

async function rejection(p: Promise<unknown>): Promise<DeviceClientError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeviceClientError);
  return err as DeviceClientError;
}

describe('DeviceClient.connect against the real broker', () => {
  it('connects with a device key, publishes telemetry a service account receives, closes', async () => {
    const d = await stack.device('thermo-1');
    const svcId = await stack.service('collector', { publish: [], subscribe: ['devices/+/telemetry/#'] });
    const svc = await ServiceClient.connect({ serviceName: 'collector', brokerUrl: stack.brokerUrl, privateKey: svcId.privateKey });
    closers.push(() => svc.close());
    const got: string[] = [];
    await svc.subscribe('devices/+/telemetry/#', (topic, payload) => void got.push(`${topic} ${payload.toString()}`));

    const client = await device({ deviceId: 'thermo-1', brokerUrl: stack.brokerUrl, privateKey: d.privateKey });
    expect(client.connected).toBe(true);
    await waitFor(async () => (await stack.registry.devices.get('thermo-1')).status.connected);
    await client.publishTelemetry({ celsius: 21.5 });
    await client.publishTelemetry('raw', { subtopic: 'living-room/ceiling', qos: 0 });
    await waitFor(() => got.length === 2);
    expect(got).toEqual(['devices/thermo-1/telemetry {"celsius":21.5}', 'devices/thermo-1/telemetry/living-room/ceiling raw']);
    expect(client.stats).toMatchObject({ connectAttempts: 1, reconnects: 0, tokenRefreshes: 0, dropped: 0 });
    await client.close();
    expect(client.connected).toBe(false);
    await expect(client.publishTelemetry({})).rejects.toMatchObject({ code: 'closed' });
  });

  it('accepts the private key as PEM and sends a username (the broker ignores it)', async () => {
    const d = await stack.device('thermo-2');
    const client = await device({ deviceId: 'thermo-2', brokerUrl: stack.brokerUrl, privateKey: privateKeyToPem(d.privateKey), username: 'anything' });
    expect(client.connected).toBe(true);
  });

  it('connects with a pluggable sign() (secure element) and a kid', async () => {
    const d = await stack.device('lock-1');
    const kid = (await stack.registry.devices.get('lock-1'))?.credentials[0]?.kid as string;
    const { sign } = await import('node:crypto');
    let calls = 0;
    const signer = async (data: Uint8Array) => {
      calls++;
      return new Uint8Array(sign('sha256', data, { key: d.privateKey, dsaEncoding: 'ieee-p1363' }));
    };
    const client = await device({ deviceId: 'lock-1', brokerUrl: stack.brokerUrl, sign: signer, kid });
    expect(client.connected).toBe(true);
    expect(calls).toBeGreaterThanOrEqual(1);
  });

  it('CONNACK 4 (unknown key) rejects with bad_credentials after exactly one CONNECT: no retry storm', async () => {
    await stack.device('thermo-3');
    const stranger = newIdentity('thermo-3');
    const err = await rejection(
      DeviceClient.connect({ deviceId: 'thermo-3', brokerUrl: proxy.url, privateKey: stranger.privateKey, backoff: { initialMs: 10, maxMs: 20 } }),
    );
    expect(err.code).toBe('bad_credentials');
    expect(err.returnCode).toBe(4);
    await sleep(500); // with a 10–20 ms backoff, a retrying client would have made dozens of attempts by now
    expect(proxy.connections).toBe(1);
  });

  it('CONNACK 5 (blocked device) rejects with not_authorized after exactly one CONNECT', async () => {
    const d = await stack.device('thermo-4');
    await stack.registry.devices.update('thermo-4', { blocked: true }, 'test');
    const err = await rejection(
      DeviceClient.connect({ deviceId: 'thermo-4', brokerUrl: proxy.url, privateKey: d.privateKey, backoff: { initialMs: 10, maxMs: 20 } }),
    );
    expect(err.code).toBe('not_authorized');
    await sleep(500);
    expect(proxy.connections).toBe(1);
  });

  it('a device blocked mid-session: the reconnect gets CONNACK 5, the client stops and reports not_authorized', async () => {
    const d = await stack.device('thermo-5');
    const client = await device({ deviceId: 'thermo-5', brokerUrl: proxy.url, privateKey: d.privateKey, backoff: { initialMs: 10, maxMs: 20 } });
    const errors: DeviceClientError[] = [];
    const closed = new Promise<DeviceClientError | undefined>((r) => client.once('close', r));
    client.on('error', (e) => errors.push(e));
    await stack.registry.devices.update('thermo-5', { blocked: true }, 'test');
    expect((await closed)?.code).toBe('not_authorized');
    expect(errors.map((e) => e.code)).toEqual(['not_authorized']);
    await sleep(500);
    expect(proxy.connections).toBe(2); // the first session, one refused reconnect, nothing after
    expect(client.connected).toBe(false);
    await expect(client.reportState({})).rejects.toMatchObject({ code: 'closed' });
  });

  it('a refusal nobody listens to does not crash the process', async () => {
    const d = await stack.device('thermo-6');
    const client = await device({ deviceId: 'thermo-6', brokerUrl: stack.brokerUrl, privateKey: d.privateKey, backoff: { initialMs: 10, maxMs: 20 } });
    const closed = new Promise((r) => client.once('close', r));
    await stack.registry.devices.update('thermo-6', { blocked: true }, 'test');
    await closed;
  });

  it('CONNACK 2 surfaces identifier_rejected and stops (a server that refuses every client id)', async () => {
    // the SDK only builds valid client ids, so the real broker never answers 2: a bare MQTT peer does
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.once('data', () => socket.end(Buffer.from([0x20, 0x02, 0x00, 0x02]))); // CONNACK rc=2 [MQTT-3.2.2.3]
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(r)));
    const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const d = newIdentity('thermo-10');
    const err = await rejection(DeviceClient.connect({ deviceId: 'thermo-10', brokerUrl: url, privateKey: d.privateKey, backoff: { initialMs: 10, maxMs: 20 } }));
    expect(err.code).toBe('identifier_rejected');
    expect(err.returnCode).toBe(2);
    await sleep(300);
    expect(connections).toBe(1);
  });

  it('an unknown service account gets bad_credentials, like a bad key (protocol.md §MQTT CONNECT)', async () => {
    const svc = newIdentity('svc:ghost');
    const err = await rejection(ServiceClient.connect({ serviceName: 'ghost', brokerUrl: stack.brokerUrl, privateKey: svc.privateKey }));
    expect(err.code).toBe('bad_credentials');
  });

  it('rejects with connect_timeout when nothing listens, retrying with backoff meanwhile', async () => {
    const d = await stack.device('thermo-7');
    await proxy.close();
    const err = await rejection(
      DeviceClient.connect({ deviceId: 'thermo-7', brokerUrl: proxy.url, privateKey: d.privateKey, connectTimeoutMs: 600, backoff: { initialMs: 20, maxMs: 100 } }),
    );
    expect(err.code).toBe('connect_timeout');
  });

  it('caller misuse throws TypeError at once', async () => {
    const d = newIdentity('thermo-8');
    const base = { brokerUrl: stack.brokerUrl, privateKey: d.privateKey };
    await expect(DeviceClient.connect({ ...base, deviceId: 'a/b' })).rejects.toBeInstanceOf(TypeError);
    await expect(DeviceClient.connect({ ...base, deviceId: 'thermo-8', brokerUrl: 'http://x' })).rejects.toBeInstanceOf(TypeError);
    await expect(DeviceClient.connect({ deviceId: 'thermo-8', brokerUrl: stack.brokerUrl })).rejects.toBeInstanceOf(TypeError);
    await expect(DeviceClient.connect({ ...base, deviceId: 'thermo-8', tokenTtlSeconds: 0 })).rejects.toBeInstanceOf(TypeError);
    await expect(DeviceClient.connect({ ...base, deviceId: 'thermo-8', backoff: { initialMs: 100, maxMs: 10 } })).rejects.toBeInstanceOf(TypeError);
    await expect(DeviceClient.connect({ ...base, deviceId: 'thermo-8', queueOverflow: 'x' as never })).rejects.toBeInstanceOf(TypeError);
    await expect(ServiceClient.connect({ ...base, serviceName: 'Bad Name' })).rejects.toBeInstanceOf(TypeError);
    expect(proxy.connections).toBe(0);
  });

  it('a signer that fails surfaces signing_failed before any CONNECT', async () => {
    const err = await rejection(
      DeviceClient.connect({ deviceId: 'thermo-9', brokerUrl: proxy.url, sign: async () => Promise.reject(new Error('secure element busy')) }),
    );
    expect(err.code).toBe('signing_failed');
    expect(proxy.connections).toBe(0);
  });
});
