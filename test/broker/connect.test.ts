/** protocol.md §MQTT CONNECT: every CONNACK row, over real sockets (hand-built CONNECTs and mqtt.js). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connackFor, connectPacket, rawConnect } from './helpers/raw-mqtt.ts';
import { newKeyPair, startBroker, waitFor, type BrokerFixture, type TestPrincipal } from './helpers/broker-fixture.ts';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';

let fx: BrokerFixture;
let dev: TestPrincipal;
let blocked: TestPrincipal;
let svc: TestPrincipal;

beforeAll(async () => {
  fx = await startBroker({ authFailureLimit: 0 });
  dev = await fx.device('thermo-1');
  blocked = await fx.device('lock-blocked', { blocked: true });
  svc = await fx.service('dashboard', { publish: ['devices/+/commands/#'], subscribe: ['devices/+/telemetry/#'] });
});
afterAll(() => fx.close());

const lastError = async (id: string) => (await fx.registry.devices.get(id)).status.lastError?.code ?? null;
/** Refusals are written in batches on the broker's timer (about every 250 ms), never on the connect path. */
async function expectLastError(id: string, code: string): Promise<void> {
  await waitFor(async () => (await lastError(id)) === code).catch(() => undefined);
  expect(await lastError(id)).toBe(code);
}

describe('CONNACK 0: accepted', () => {
  it('a device with a valid token (mqtt.js)', async () => {
    const client = await fx.connect('thermo-1', await dev.token());
    expect(client.connected).toBe(true);
    await client.endAsync();
  });

  it('a device with a valid token and no username (hand-built CONNECT)', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', password: await dev.token() })).toBe(0);
  });

  it('a token naming its credential by kid', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token({ kid: dev.kid }) })).toBe(0);
  });

  it('a service account, also as a named instance', async () => {
    expect(await connackFor(fx.port, { clientId: 'svc:dashboard', username: 'u', password: await svc.token() })).toBe(0);
    expect(await connackFor(fx.port, { clientId: 'svc:dashboard:worker-7', username: 'u', password: await svc.token() })).toBe(0);
  });

  it('a 64-character device id (above aedes default client id length)', async () => {
    const id = `d${'x'.repeat(63)}`;
    const long = await fx.device(id);
    expect(await connackFor(fx.port, { clientId: id, username: 'u', password: await long.token() })).toBe(0);
    // MQTT 3.1 is where aedes applies maxClientsIdLength (default 23)
    const v31 = { clientId: id, username: 'u', password: await long.token(), protocolLevel: 3, protocolName: 'MQIsdp' };
    expect(await connackFor(fx.port, v31)).toBe(0);
  });
});

describe('CONNACK 2: identifier rejected', () => {
  for (const clientId of ['', 'ab', '1abc', 'dev/ice', 'dev+ice', 'svc:Bad_Name', 'svc:', `d${'x'.repeat(64)}`]) {
    it(`client id ${JSON.stringify(clientId.slice(0, 20))}`, async () => {
      expect(await connackFor(fx.port, { clientId, username: 'u', password: await dev.token() })).toBe(2);
    });
  }
});

describe('CONNACK 4: bad user name or password', () => {
  it('no password', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u' })).toBe(4);
    await expectLastError('thermo-1', 'token_missing');
  });

  it('a malformed token', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: 'not.a.token' })).toBe(4);
    await expectLastError('thermo-1', 'token_malformed');
  });

  it('a token over 4096 bytes is refused before parsing', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: 'a'.repeat(5000) })).toBe(4);
    await expectLastError('thermo-1', 'token_too_large');
  });

  it('unknown device and bad signature are indistinguishable to the client', async () => {
    const stranger = newKeyPair();
    const forged = (await mintConnectToken({ subject: 'thermo-1', privateKey: stranger.privateKey, clock: fx.clock })).token;
    const unknown = (await mintConnectToken({ subject: 'ghost-1', privateKey: stranger.privateKey, clock: fx.clock })).token;
    const a = await rawExchange('thermo-1', forged);
    const b = await rawExchange('ghost-1', unknown);
    expect(a).toEqual(b);
    expect([...a]).toEqual([0x20, 0x02, 0x00, 0x04]);
    await expectLastError('thermo-1', 'signature_invalid');
    expect(await fx.metric('latchkey_broker_connects_total', { result: 'refused', reason: 'unknown_principal' })).toBeGreaterThan(0);
  });

  it('an unknown kid, and an expired credential', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token({ kid: 'k-nope' }) })).toBe(4);
    await expectLastError('thermo-1', 'unknown_credential');
    const { privateKey, pem } = newKeyPair();
    await fx.registry.devices.create({ id: 'old-1', key: parsePublicKey(pem), expiresAt: fx.clock() + 1000 }, 'test');
    fx.clock.advance(2000);
    const token = (await mintConnectToken({ subject: 'old-1', privateKey, clock: fx.clock })).token;
    expect(await connackFor(fx.port, { clientId: 'old-1', username: 'u', password: token })).toBe(4);
    await expectLastError('old-1', 'credential_expired');
  });

  it('a broken claim rule (wrong audience, expired token)', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token({ audience: 'other' }) })).toBe(4);
    await expectLastError('thermo-1', 'audience_mismatch');
    const old = await dev.token({ ttlSeconds: 60, clock: () => fx.clock() - 3_600_000 });
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: old })).toBe(4);
    await expectLastError('thermo-1', 'token_expired');
  });

  it("client id ≠ sub (a device presenting another device's valid token)", async () => {
    const other = await fx.device('thermo-2');
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await other.token() })).toBe(4);
    // the signature is checked with thermo-1's keys first, so this is a signature failure for thermo-1
    await expectLastError('thermo-1', 'signature_invalid');
  });

  it("a device presenting a service account's subject, and a service presenting a device's (kinds must agree)", async () => {
    // each token is signed by the key registered for its client id, so only the subject is wrong
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token({ subject: 'svc:dashboard' }) })).toBe(4);
    await expectLastError('thermo-1', 'subject_mismatch');
    fx.clock.advance(60_000); // a fresh refusal-log window: this address's earlier refusals are only counted
    const before = await fx.metric('latchkey_broker_connects_total', { result: 'refused', reason: 'subject_mismatch' });
    expect(await connackFor(fx.port, { clientId: 'svc:dashboard', username: 'u', password: await svc.token({ subject: 'dashboard' }) })).toBe(4);
    expect(await fx.metric('latchkey_broker_connects_total', { result: 'refused', reason: 'subject_mismatch' })).toBe(before + 1);
    const refusals = async () => (await fx.registry.audit.list({ limit: 5, target: 'svc:dashboard' })).filter((e) => e.action === 'auth.failure');
    await waitFor(async () => (await refusals()).length > 0);
    expect((await refusals())[0]).toMatchObject({ detail: { reason: 'subject_mismatch' } });
  });
});

describe('CONNACK 5: not authorized', () => {
  it('a blocked device with a valid token', async () => {
    expect(await connackFor(fx.port, { clientId: 'lock-blocked', username: 'u', password: await blocked.token() })).toBe(5);
    await expectLastError('lock-blocked', 'principal_blocked');
  });

  it('a will outside the ACL is refused; one inside is accepted', async () => {
    const token = await dev.token();
    const outside = { topic: 'devices/thermo-2/state', payload: 'gone' };
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: token, will: outside })).toBe(5);
    await expectLastError('thermo-1', 'will_not_allowed');
    const inside = { topic: 'devices/thermo-1/state', payload: '{"online":false}' };
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: token, will: inside })).toBe(0);
  });
});

describe('what the client never sees', () => {
  it('the internal reason goes to the audit log and metrics, the token never to a log line', async () => {
    const token = await dev.token({ audience: 'elsewhere' });
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: token })).toBe(4);
    const audited = () => fx.registry.audit.list({ limit: 50, target: 'thermo-1' });
    await waitFor(async () => (await audited()).some((e) => JSON.stringify(e).includes('audience_mismatch')));
    const audit = await audited();
    expect(await fx.metric('latchkey_broker_connects_total', { result: 'refused', reason: 'audience_mismatch' })).toBeGreaterThan(0);
    expect(fx.log.text()).not.toContain(token);
    expect(fx.log.text()).not.toContain(token.split('.')[2]);
    expect(JSON.stringify(audit)).not.toContain(token.split('.')[2]);
  });

  it('a client id that does not parse is recorded only to its first 64 characters', async () => {
    // e.g. a secret pasted into the wrong field: what does not parse is not kept whole
    const clientId = `pasted.${'s'.repeat(64)}.${'t'.repeat(70)}`;
    fx.clock.advance(60_000); // a new aggregation window: earlier refusals from 127.0.0.1 do not fold this one into a summary
    expect(await connackFor(fx.port, { clientId, username: 'u', password: await dev.token() })).toBe(2);
    await waitFor(async () => JSON.stringify(await fx.registry.audit.list({ limit: 50 })).includes(clientId.slice(0, 64)));
    const audit = JSON.stringify(await fx.registry.audit.list({ limit: 50 }));
    expect(audit).toContain('client_id_invalid');
    expect(audit).toContain(clientId.slice(0, 64));
    expect(audit).not.toContain(clientId.slice(0, 65));
    expect(fx.log.text()).not.toContain('t'.repeat(70));
  });

  it('a refused client gets its CONNACK and then the socket is closed', async () => {
    const conn = await rawConnect(fx.port);
    conn.send(connectPacket({ clientId: 'thermo-1', username: 'u', password: 'x.y.z' }));
    expect(await conn.connack()).toBe(4);
    await conn.closed;
  });

  it('an MQTT 5 client gets CONNACK 1 (aedes speaks 3.1.1)', async () => {
    expect(await connackFor(fx.port, { clientId: 'thermo-1', username: 'u', password: await dev.token(), protocolLevel: 5 })).toBe(1);
  });
});

async function rawExchange(clientId: string, token: string): Promise<Buffer> {
  const conn = await rawConnect(fx.port);
  conn.send(connectPacket({ clientId, username: 'u', password: token }));
  await conn.closed;
  return conn.received();
}
