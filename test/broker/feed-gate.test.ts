/**
 * The broker and the registry's change feed (issue 11): a node whose feed is down for more than
 * FEED_DOWN_LIMIT_MS refuses new CONNECTs with CONNACK 3 until it has resynced, and after a full
 * resync (changes lost to outbox pruning) it drops its credential cache and re-checks every live
 * session. The real broker over a real SQLite registry; only the feed's health is injected (how
 * long it has been down, which state it reports), as a clock is: the real PostgreSQL outage is
 * test/registry/postgres-restart.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { Registry as MetricsRegistry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { createBroker, FEED_DOWN_LIMIT_MS, type Broker, type BrokerRegistryPort } from '../../broker/src/index.ts';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { openRegistry, type FeedState, type Registry } from '../../provisioning/src/registry/index.ts';
import { newKeyPair, recordingLog, testClock, waitFor } from './helpers/broker-fixture.ts';

/** The feed's health as the test sets it. */
function injectedFeed() {
  const listeners = new Set<(s: FeedState) => void>();
  return {
    down: 0,
    downForMs(): number {
      return this.down;
    },
    onState(l: (s: FeedState) => void): () => void {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    report(s: FeedState): void {
      for (const l of listeners) l(s);
    },
  };
}

let dir: string;
let registry: Registry;
let broker: Broker;
let feed: ReturnType<typeof injectedFeed>;
const clients: mqtt.MqttClient[] = [];
const clock = testClock();

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'latchkey-gate-'));
  registry = await openRegistry(path.join(dir, 'latchkey.db'), { clock });
  feed = injectedFeed();
  // the real registry, but for its feed's health
  const port: BrokerRegistryPort = {
    findPrincipal: (p) => registry.findPrincipal(p),
    onChange: (l) => registry.onChange(l),
    recordSessionEvents: (e) => registry.recordSessionEvents(e),
    recordSeen: (e) => registry.recordSeen(e),
    recordCredentialUses: (u) => registry.recordCredentialUses(u),
    recordAuthFailure: (f) => registry.recordAuthFailure(f),
    recordLastErrors: (e) => registry.recordLastErrors(e),
    saveState: (id, s, at) => registry.saveState(id, s, at),
    allConfigs: (after, limit) => registry.allConfigs(after, limit),
    feed,
  };
  broker = createBroker({ config: { host: '127.0.0.1', mqttPort: 0, authFailureLimit: 3 }, registry: port, clock, log: recordingLog(), metrics: new MetricsRegistry() });
  await broker.listen();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
  await broker.close();
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
});

async function device(id: string) {
  const { privateKey, pem } = newKeyPair();
  await registry.devices.create({ id, key: parsePublicKey(pem) }, 'test');
  return async () => (await mintConnectToken({ subject: id, privateKey, ttlSeconds: 3600, clock })).token;
}

/** One CONNECT: its CONNACK code, the client kept open when accepted. */
async function connack(clientId: string, password: string): Promise<number> {
  const url = `mqtt://127.0.0.1:${broker.addresses.mqtt?.port}`;
  try {
    const c = await mqtt.connectAsync(url, { clientId, username: 'x', password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    clients.push(c);
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw e;
  }
}

describe('the CONNECT gate on the change feed', () => {
  it(`accepts while the feed is up or down for at most ${FEED_DOWN_LIMIT_MS} ms, refuses with 3 beyond, and accepts again once resynced`, async () => {
    const token = await device('thermo-1');
    expect(await connack('thermo-1', await token())).toBe(0);
    feed.down = FEED_DOWN_LIMIT_MS;
    expect(await connack('thermo-1', await token())).toBe(0);
    feed.down = FEED_DOWN_LIMIT_MS + 1;
    feed.report('down');
    // more refusals than the throttle allows (3): the server's unavailability never becomes a 5
    for (let i = 0; i < 5; i++) expect(await connack('thermo-1', await token())).toBe(3);
    // whoever connects: an unknown id or garbage gets the same 3, before anything else is looked at
    expect(await connack('ghost-1', 'not-a-token')).toBe(3);
    // a session that was up stays up: the gate is for new CONNECTs
    expect(broker.sessionCount).toBe(1);
    feed.down = 0;
    feed.report('resynced');
    expect(await connack('thermo-1', await token())).toBe(0);
  });

  it('after a full resync, drops cached credentials and ends the sessions of principals blocked, deleted or whose key was removed meanwhile', async () => {
    const tokens = { a: await device('thermo-a'), b: await device('thermo-b'), c: await device('thermo-c'), d: await device('thermo-d') };
    for (const [k, t] of Object.entries(tokens)) expect(await connack(`thermo-${k}`, await t())).toBe(0);
    const keyOfD = (await registry.devices.get('thermo-d')).credentials[0]!.kid;
    // changes this broker never hears of: another registry on the same file (another process)
    const other = await openRegistry(path.join(dir, 'latchkey.db'), { clock, resetSessions: false });
    try {
      await other.devices.update('thermo-a', { blocked: true }, 'admin');
      await other.devices.delete('thermo-c', 'admin');
      await other.devices.addCredential('thermo-d', parsePublicKey(newKeyPair().pem), undefined, 'admin');
      await other.devices.removeCredential('thermo-d', keyOfD, 'admin');
    } finally {
      await other.close();
    }
    expect(broker.sessionCount).toBe(4);
    // the cache still says thermo-a is not blocked
    expect(await connack('thermo-a', await tokens.a())).toBe(0);
    feed.report('full_resync');
    await waitFor(() => broker.sessionCount === 1);
    // the cache was dropped: thermo-a is read again, and is blocked
    expect(await connack('thermo-a', await tokens.a())).toBe(5);
    expect(await connack('thermo-b', await tokens.b())).toBe(0);
  });
});
