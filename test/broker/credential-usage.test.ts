import { afterEach, describe, expect, it } from 'vitest';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { signDeviceMessage } from '../../device-sdk/src/token/sign-message.ts';
import type { CredentialUse } from '../../broker/src/registry-port.ts';
import { newKeyPair, startBroker, waitFor, type BrokerFixture } from './helpers/broker-fixture.ts';

/**
 * Issue 15: each credential's last connect and last signed message, written in the same batches as
 * device status (no write per connect), correct across rotation.
 */
let fx: BrokerFixture;
afterEach(async () => {
  await fx?.close();
});

/** Every registry write the broker makes, by method, with what it carried (the real registry still does the work). */
function countWrites(f: BrokerFixture) {
  const calls: { method: string; size: number }[] = [];
  const uses: CredentialUse[] = [];
  const r = f.registry as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of ['recordCredentialUses', 'recordSessionEvents', 'recordSeen', 'recordConnected', 'recordDisconnected', 'recordLastErrors', 'recordAuthFailure']) {
    const real = r[method]!.bind(f.registry);
    r[method] = (...args: unknown[]) => {
      const batch = args[0];
      calls.push({ method, size: Array.isArray(batch) ? batch.length : 1 });
      if (method === 'recordCredentialUses') uses.push(...(batch as CredentialUse[]));
      return real(...args);
    };
  }
  return { calls, uses };
}

const usage = async (f: BrokerFixture, id: string) =>
  Object.fromEntries((await f.registry.devices.keyHistory(id)).map((k) => [k.kid, { connect: k.lastConnectAt, message: k.lastMessageAt, removed: k.removedAt }]));

describe('credential usage at the broker', () => {
  it('adds no write per connect: 8 connects of 8 devices reach the registry as one usage batch (and one session batch) at the flush', async () => {
    fx = await startBroker({ statusFlushInterval: 3600 }); // no periodic flush during the test: only close() flushes
    const devices = await Promise.all(Array.from({ length: 8 }, (_, i) => fx.device(`batch-${i}`)));
    const writes = countWrites(fx);
    for (const d of devices) {
      await fx.connect(d.id, await d.token());
      fx.clock.advance(10);
    }
    const end = fx.clock();
    expect(fx.broker.sessionCount).toBe(8);
    expect(writes.calls).toEqual([]); // eight connects, not one registry write
    await fx.broker.close();
    expect(writes.calls.filter((c) => c.method === 'recordCredentialUses')).toEqual([{ method: 'recordCredentialUses', size: 8 }]);
    expect(writes.calls.filter((c) => c.method === 'recordSessionEvents')).toHaveLength(1);
    expect(writes.calls.filter((c) => !['recordCredentialUses', 'recordSessionEvents', 'recordSeen'].includes(c.method))).toEqual([]);
    const at = new Map(writes.uses.map((u) => [u.principal, u.connectAt]));
    for (const [i, d] of devices.entries()) {
      expect(await usage(fx, d.id)).toEqual({ [d.kid]: { connect: at.get(d.id), message: null, removed: null } });
      expect(at.get(d.id)).toBe(end - (8 - i) * 10); // the time its token verified
    }
  });

  it('is right across rotation: each key keeps its own last connect; a removed key keeps it in the history', async () => {
    fx = await startBroker({ statusFlushInterval: 0.02 });
    const d = await fx.device('rot-1');
    const c1 = await fx.connect(d.id, await d.token());
    const t1 = fx.clock();
    await waitFor(async () => (await usage(fx, d.id))[d.kid]?.connect === t1);

    // rotation: a second key; the device reconnects with it (takeover of its own session)
    fx.clock.advance(60_000);
    const next = newKeyPair();
    const k2 = (await fx.registry.devices.addCredential(d.id, parsePublicKey(next.pem), null, 'test')).kid;
    const token2 = (await mintConnectToken({ subject: d.id, privateKey: next.privateKey, kid: k2, ttlSeconds: 3600, clock: fx.clock })).token;
    await fx.connect(d.id, token2);
    const t2 = fx.clock();
    await waitFor(() => !c1.connected); // the takeover closed the first session
    await waitFor(async () => (await usage(fx, d.id))[k2]?.connect === t2);
    expect((await usage(fx, d.id))[d.kid]).toEqual({ connect: t1, message: null, removed: null });

    fx.clock.advance(60_000);
    await fx.registry.devices.removeCredential(d.id, d.kid, 'test');
    expect(await usage(fx, d.id)).toEqual({
      [d.kid]: { connect: t1, message: null, removed: fx.clock() },
      [k2]: { connect: t2, message: null, removed: null },
    });
  });

  it('records the key that verified a signed message at the edge (requireSignedTopics) as lastMessageAt', async () => {
    fx = await startBroker({ statusFlushInterval: 0.02, requireSignedTopics: ['devices/+/telemetry/#'] });
    const d = await fx.device('signer-1');
    const client = await fx.connect(d.id, await d.token());
    const connectedAt = fx.clock();
    fx.clock.advance(5000);
    const topic = 'devices/signer-1/telemetry';
    await client.publishAsync(topic, await signDeviceMessage({ deviceId: d.id, topic, payload: { celsius: 21 }, seq: 1, privateKey: d.privateKey, clock: fx.clock }), { qos: 1 });
    await waitFor(async () => (await usage(fx, d.id))[d.kid]?.message === connectedAt + 5000);
    expect((await fx.registry.devices.get(d.id)).credentials[0]).toMatchObject({ lastConnectAt: connectedAt, lastMessageAt: connectedAt + 5000, lastUsedAt: connectedAt + 5000 });
  });
});
