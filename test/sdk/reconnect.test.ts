import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceClient, ServiceClient, type DeviceClientOptions } from '@latchkey/device-sdk';
import { closeAll, countingProxy, sleep, startStack, waitFor, type CountingProxy, type Stack, type TestIdentity } from './helpers/stack.ts';

let stack: Stack;
let proxy: CountingProxy;
let backend: ServiceClient;
let dev: TestIdentity;
const closers: (() => Promise<unknown>)[] = [];
const seqs = new Set<number>();
const replies = new Map<string, unknown>();

beforeEach(async () => {
  stack = await startStack({ authFailureLimit: 0 });
  proxy = await countingProxy(stack.port);
  dev = await stack.device('thermo-1');
  const b = await stack.service('backend', { publish: ['devices/+/commands/#'], subscribe: ['devices/+/telemetry', 'devices/+/replies/+'] });
  backend = await ServiceClient.connect({ serviceName: 'backend', brokerUrl: stack.brokerUrl, privateKey: b.privateKey, backoff: { initialMs: 50, maxMs: 200 } });
  closers.push(() => backend.close());
  seqs.clear();
  replies.clear();
  await backend.subscribe('devices/+/telemetry', (_t, p) => void seqs.add((JSON.parse(p.toString()) as { seq: number }).seq));
  await backend.subscribe('devices/+/replies/+', (t, p) => void replies.set(t.split('/')[3] as string, JSON.parse(p.toString())));
});

afterEach(async () => {
  await closeAll(closers);
  await proxy.close();
  await stack.close();
});

async function connectDevice(o: Partial<DeviceClientOptions> = {}): Promise<DeviceClient> {
  const c = await DeviceClient.connect({
    deviceId: 'thermo-1',
    brokerUrl: proxy.url,
    privateKey: dev.privateKey,
    backoff: { initialMs: 50, maxMs: 200 },
    ...o,
  });
  closers.push(() => c.close());
  return c;
}

describe('network failure', () => {
  it('reconnects with backoff; telemetry queued meanwhile and commands sent meanwhile are all delivered', async () => {
    const client = await connectDevice();
    await client.onCommand('ping', (params) => ({ pong: params }));
    let offline = 0;
    client.on('offline', () => offline++);
    await client.publishTelemetry({ seq: 0 });

    proxy.refusing = true;
    proxy.drop();
    await waitFor(() => !client.connected);
    const during = [1, 2, 3, 4, 5].map((seq) => client.publishTelemetry({ seq }));
    await backend.publish('devices/thermo-1/commands/ping', { id: 'c-1', params: 7 }); // queued by the broker's persistent session
    const attemptsBefore = proxy.connections;
    await sleep(800);
    const attemptsDuringOutage = proxy.connections - attemptsBefore;
    expect(client.stats.queued).toBe(5);
    proxy.refusing = false;

    await Promise.all(during);
    await waitFor(() => seqs.size === 6 && replies.has('c-1'));
    expect([...seqs].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(replies.get('c-1')).toEqual({ ok: true, result: { pong: 7 } });
    expect(offline).toBe(1);
    expect(client.stats.reconnects).toBe(1);
    expect(attemptsDuringOutage).toBeGreaterThanOrEqual(2); // it kept trying...
    expect(attemptsDuringOutage).toBeLessThan(40); // ...with backoff (a 10 ms loop would make 80)
  });

  it('bounds the offline queue: drop-oldest evicts and counts, reject refuses the newest', async () => {
    const dropping = await connectDevice({ maxQueuedMessages: 3 });
    proxy.refusing = true;
    proxy.drop();
    await waitFor(() => !dropping.connected);
    const pending = [10, 11, 12, 13, 14].map((seq) => dropping.publishTelemetry({ seq }));
    expect(dropping.stats.queued).toBe(3);
    proxy.refusing = false;
    const results = await Promise.allSettled(pending);
    // the two oldest were evicted while offline; the last three were delivered after reconnect
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'))).toEqual([
      'message_dropped',
      'message_dropped',
      'ok',
      'ok',
      'ok',
    ]);
    expect(dropping.stats.dropped).toBe(2);
    await waitFor(() => seqs.size === 3);
    expect([...seqs].sort()).toEqual([12, 13, 14]);
    await dropping.close();

    const refusing = await connectDevice({ maxQueuedMessages: 2, queueOverflow: 'reject' });
    proxy.refusing = true;
    proxy.drop();
    await waitFor(() => !refusing.connected);
    const kept = [20, 21].map((seq) => refusing.publishTelemetry({ seq }));
    await expect(refusing.publishTelemetry({ seq: 22 })).rejects.toMatchObject({ code: 'queue_full' });
    expect(refusing.stats.dropped).toBe(1);
    proxy.refusing = false;
    await Promise.all(kept);
  });

  it('close() while reconnecting rejects queued publishes with closed and stops trying', async () => {
    const client = await connectDevice();
    proxy.refusing = true;
    proxy.drop();
    await waitFor(() => !client.connected);
    const queued = client.publishTelemetry({ seq: 99 });
    await client.close();
    await expect(queued).rejects.toMatchObject({ code: 'closed' });
    // a reconnect whose TCP connect was already in flight at close() may still reach the proxy
    // (under load its accept lands late): let it land, then no further attempt may come
    await sleep(400);
    const attempts = proxy.connections;
    await sleep(600);
    expect(proxy.connections).toBe(attempts);
  });
});

describe('broker restart', () => {
  it('survives a restart on the same port: backs off, reconnects, resubscribes, delivers what was queued', async () => {
    const client = await DeviceClient.connect({ deviceId: 'thermo-1', brokerUrl: stack.brokerUrl, privateKey: dev.privateKey, backoff: { initialMs: 100, maxMs: 400 } });
    closers.push(() => client.close());
    await client.onCommand('ping', () => 'pong');
    const reconnected = new Promise<{ sessionPresent: boolean }>((r) => client.once('connect', r));

    const restarting = stack.restartBroker(1_500);
    await waitFor(() => !client.connected);
    const attemptsBefore = client.stats.connectAttempts;
    const queued = client.publishTelemetry({ seq: 1 });
    await restarting;
    const info = await reconnected;
    await queued; // acknowledged by the new broker

    expect(info.sessionPresent).toBe(false); // a new broker has no session: the client resubscribed itself
    const attempts = client.stats.connectAttempts - attemptsBefore;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThan(40);
    expect(client.stats.reconnects).toBe(1);

    // The backend resubscribes to the replies on its own schedule (no event says when): send the
    // command again every 500 ms until one reply arrives, instead of guessing how long that takes.
    let sent = 0;
    let lastSentAt = 0;
    await waitFor(() => {
      if (replies.size > 0) return true;
      if (backend.connected && Date.now() - lastSentAt >= 500) {
        lastSentAt = Date.now();
        void backend.publish('devices/thermo-1/commands/ping', { id: `after-restart-${++sent}`, params: {} });
      }
      return false;
    }, 10_000);
    expect([...replies.values()][0]).toEqual({ ok: true, result: 'pong' });
  }, 15_000);
});

describe('a message the broker always refuses', () => {
  it('is given up with publish_refused after 3 accepted sessions, instead of looping forever', async () => {
    const s = await stack.service('narrow', { publish: ['allowed/#'], subscribe: [] });
    const svc = await ServiceClient.connect({ serviceName: 'narrow', brokerUrl: proxy.url, privateKey: s.privateKey, backoff: { initialMs: 10, maxMs: 50 } });
    closers.push(() => svc.close());
    await expect(svc.publish('forbidden/topic', { x: 1 })).rejects.toMatchObject({ code: 'publish_refused' });
    await waitFor(() => svc.connected);
    await svc.publish('allowed/topic', { x: 2 });
    expect(proxy.connections).toBeLessThanOrEqual(5);
  });
});
