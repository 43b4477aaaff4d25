import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient, ServiceClient } from '@latchkey/device-sdk';
import { closeAll, sleep, startStack, waitFor, type Stack } from './helpers/stack.ts';

let stack: Stack | null = null;
const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  await closeAll(closers);
  await stack?.close();
  stack = null;
});

/** Counts telemetry per device by sequence number, at a service account (the fleet's view of loss). */
async function collector(s: Stack) {
  const ident = await s.service('collector', { publish: [], subscribe: ['devices/+/telemetry/#'] });
  const svc = await ServiceClient.connect({ serviceName: 'collector', brokerUrl: s.brokerUrl, privateKey: ident.privateKey });
  closers.push(() => svc.close());
  const seen = new Set<number>();
  let deliveries = 0;
  await svc.subscribe('devices/+/telemetry', (_t, payload) => {
    deliveries++;
    seen.add((JSON.parse(payload.toString()) as { seq: number }).seq);
  });
  return { seen, deliveries: () => deliveries };
}

describe('token refresh mid-session', () => {
  it('refreshes before exp with a fresh token; QoS 1 telemetry published throughout arrives complete', async () => {
    // the broker ends a session at exp + 1 s: only a refresh before that keeps the device connected
    stack = await startStack({ clockTolerance: 1 });
    const d = await stack.device('thermo-1');
    const counted = await collector(stack);
    const client = await DeviceClient.connect({ deviceId: 'thermo-1', brokerUrl: stack.brokerUrl, privateKey: d.privateKey, tokenTtlSeconds: 3 });
    closers.push(() => client.close());
    const refreshes: number[] = [];
    client.on('token-refresh', ({ exp }) => refreshes.push(exp));
    let offline = 0;
    client.on('offline', () => offline++);

    // Driven by count, not wall time: publish every 15 ms until the client has refreshed twice.
    const published: Promise<void>[] = [];
    let seq = 0;
    const cap = Date.now() + 15_000;
    while (client.stats.tokenRefreshes < 2 && Date.now() < cap) {
      published.push(client.publishTelemetry({ seq: seq++ }));
      await sleep(15);
    }
    const results = await Promise.allSettled(published);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    await waitFor(() => counted.seen.size === seq, 5_000);

    expect(counted.seen.size).toBe(seq); // zero loss: every sequence number arrived
    expect(counted.deliveries()).toBeGreaterThanOrEqual(seq); // QoS 1 may duplicate, never lose
    expect(client.stats.tokenRefreshes).toBeGreaterThanOrEqual(2);
    expect(refreshes.length).toBe(client.stats.tokenRefreshes);
    expect(new Set(refreshes).size).toBe(refreshes.length); // each refresh used a new token
    expect(client.stats.reconnects).toBe(0); // no session was cut by the broker's expiry
    expect(offline).toBe(0);
    expect(client.stats.dropped).toBe(0);
  }, 30_000);

  it('each CONNECT carries its own token (jti): a broker with requireJti accepts every refresh', async () => {
    stack = await startStack({ clockTolerance: 1, requireJti: true });
    const d = await stack.device('lock-1');
    const client = await DeviceClient.connect({ deviceId: 'lock-1', brokerUrl: stack.brokerUrl, privateKey: d.privateKey, tokenTtlSeconds: 2, jti: true });
    closers.push(() => client.close());
    const events: string[] = [];
    client.on('offline', () => events.push('offline'));
    client.on('error', (e) => events.push(`error ${e.code}`));
    await waitFor(() => client.stats.tokenRefreshes >= 2, 8_000);
    await waitFor(() => client.connected, 5_000); // a refresh may be under way at that moment: it completes
    // What must hold: every CONNECT carried a jti the broker had not seen, so every one was accepted —
    // one for the first session and one per refresh, none refused, no session lost.
    const stats = client.stats;
    expect(stats.connectAttempts).toBe(1 + stats.tokenRefreshes);
    expect((await stack.registry.audit.list({ limit: 100, target: 'lock-1' })).filter((e) => e.action === 'auth.failure')).toEqual([]);
    expect(stats.reconnects).toBe(0);
    expect(events).toEqual([]);
  }, 15_000);
});
