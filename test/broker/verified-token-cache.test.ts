/**
 * Issue 12: the verified-token cache skips the signature check for a token byte-identical to one
 * this broker verified, and changes no accept/refuse decision. Proven here with real crypto and a
 * real registry: the cache's own rules (expiry at exp + tolerance, the change feed, LRU), and a
 * randomized differential run where every CONNECT goes through two `authenticate` hooks over the
 * same registry, one with the cache and one without, feeding the same tokens again and again
 * while the clock moves and the registry blocks, deletes, adds and removes keys. A third hook has
 * the cache and checks signatures on a verify thread (`verifyThreads`): the same decisions again.
 * The attack vectors run with the cache on and off, threads 0 and 1, in test/broker/vectors.test.ts.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN_RULES, parsePublicKey, type VerifiedToken } from '@latchkey/device-sdk/protocol';
import { createAuthenticate } from '../../broker/src/auth/authenticate.ts';
import { CredentialCache, type CachedPrincipal } from '../../broker/src/auth/credential-cache.ts';
import { FailureThrottle } from '../../broker/src/auth/failure-throttle.ts';
import { JtiCache } from '../../broker/src/auth/jti-cache.ts';
import { SessionTable } from '../../broker/src/auth/session-table.ts';
import { VerifiedTokenCache } from '../../broker/src/auth/verified-token-cache.ts';
import { VerifyPool } from '../../broker/src/auth/verify-pool.ts';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { openRegistry, type Registry } from '../../provisioning/src/registry/index.ts';
import { connackFor } from './helpers/raw-mqtt.ts';
import { startBroker, type BrokerFixture } from './helpers/broker-fixture.ts';
import { seeded } from '../helpers/seeded.ts';

const START = 1_800_000_000_000;
const TOLERANCE_S = DEFAULT_TOKEN_RULES.clockTolerance;
let now = START;
const clock = () => now;
const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;

let dir: string;
let registry: Registry;
const pools: VerifyPool[] = [];
beforeEach(async () => {
  now = START;
  dir = mkdtempSync(path.join(tmpdir(), 'latchkey-token-cache-'));
  registry = await openRegistry(path.join(dir, 'db'), { clock });
});
afterEach(async () => {
  for (const pool of pools.splice(0)) await pool.close();
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  connack: number;
  reason: string;
}

/**
 * latchkey's authenticate hook over `registry`, with (`cacheSize` > 0) or without the verified-token
 * cache, checking signatures inline or (`verifyThreads` > 0) on a verify pool.
 */
function hook(cacheSize: number, opts: { requireJti?: boolean; will?: string; verifyThreads?: number } = {}) {
  const verifyPool = (opts.verifyThreads ?? 0) === 0 ? null : new VerifyPool({ threads: opts.verifyThreads as number, keyCacheSize: 64, onThreadFailure: () => {} });
  if (verifyPool !== null) pools.push(verifyPool);
  const credentials = new CredentialCache(registry, 16, () => {});
  const verifiedTokens = new VerifiedTokenCache(cacheSize);
  registry.onChange((c) => {
    credentials.invalidate(c.principal);
    verifiedTokens.invalidate(c.principal);
  });
  let hits = 0;
  let verifies = 0;
  let refusal = '';
  const authenticate = createAuthenticate({
    rules: { ...DEFAULT_TOKEN_RULES, requireJti: opts.requireJti ?? false },
    clock,
    credentials,
    verifiedTokens,
    verifyPool,
    onTokenCacheHit: () => void hits++,
    throttle: new FailureThrottle({ limit: 0, windowMs: 60_000, capacity: 10 }),
    feedDownForMs: () => 0,
    jtis: opts.requireJti ? new JtiCache({ capacity: 1000, toleranceMs: TOLERANCE_S * 1000 }) : null,
    sessions: new SessionTable(() => {}),
    unavailable: () => false,
    supersede: () => {},
    emptyClientIds: new WeakSet(),
    remoteAddressOf: () => '192.0.2.1',
    timeoutMs: 5_000,
    observeVerify: () => void verifies++,
    onAccepted: () => {},
    onRefused: (failure) => void (refusal = failure.reason),
  });
  /** One CONNECT through the real hook; a plain record stands in for aedes's client. */
  const connect = (clientId: string, token: string, will?: string): Promise<Outcome> =>
    new Promise((resolve) => {
      const client = { id: clientId, closed: false, clean: true, _will: will === undefined ? null : { topic: will, payload: Buffer.alloc(0), qos: 0, retain: false }, conn: {} } as unknown as Client;
      refusal = '';
      authenticate(client, 'u', Buffer.from(token), (err) => {
        // the refusal is reported right after aedes's callback
        setImmediate(() => {
          const connack = err === null ? 0 : ((err as { returnCode?: number }).returnCode ?? 5);
          resolve({ connack, reason: err === null ? 'accepted' : refusal });
        });
      });
    });
  return { connect, verifiedTokens, verifyPool, counts: () => ({ hits, verifies }) };
}

const mint = async (subject: string, privateKey: KeyObject, over: { ttl?: number; kid?: string; jti?: boolean; offsetMs?: number } = {}) =>
  (
    await mintConnectToken({
      subject,
      privateKey,
      ttlSeconds: over.ttl ?? 60,
      ...(over.kid === undefined ? {} : { kid: over.kid }),
      ...(over.jti ? { jti: true } : {}),
      clock: () => now + (over.offsetMs ?? 0),
    })
  ).token;

describe('the cache itself', () => {
  const record = (kid: string, expiresAt: number | null = null): CachedPrincipal => ({
    kind: 'device',
    principal: 'd-1',
    blocked: false,
    acl: null,
    credentials: [{ kid, key: keyPair().publicKey, expiresAt }],
    signedTelemetry: false,
    gcp: null,
  });
  const token = (kid: string, expiresAtMs: number): VerifiedToken => ({ alg: 'ES256', sub: 'd-1', aud: 'latchkey', iat: 0, exp: expiresAtMs / 1000, kid, expiresAtMs });
  const entry = (r: CachedPrincipal, diesAt: number, principal = 'd-1') => ({ principal, record: r, token: token('k1', diesAt - 1000), verifiedAt: 100, diesAt });

  it('is keyed by the SHA-256 of the whole token: one byte anywhere makes another key', () => {
    const a = VerifiedTokenCache.digest(Buffer.from('aaaa.bbbb.cccc'));
    expect(a).toHaveLength(44);
    expect(VerifiedTokenCache.digest(Buffer.from('aaaa.bbbb.cccc'))).toBe(a);
    expect(VerifiedTokenCache.digest(Buffer.from('aaaa.bbbb.cccd'))).not.toBe(a);
    expect(VerifiedTokenCache.digest(Buffer.from('baaa.bbbb.cccc'))).not.toBe(a);
  });

  it('an entry lives from its verification until exp + tolerance, only for its principal', () => {
    const c = new VerifiedTokenCache(10);
    c.set('x', entry(record('k1'), 5000));
    expect(c.get('x', 'd-2', 200)).toBeNull();
    expect(c.get('x', 'd-1', 99)).toBeNull(); // the clock went back before the verification
    c.set('x', entry(record('k1'), 5000));
    const hit = c.get('x', 'd-1', 4999);
    expect(hit?.token.kid).toBe('k1');
    expect(hit?.record.credentials).toEqual([]); // the KeyObjects stay the key cache's to keep
    expect(c.get('x', 'd-1', 5000)).toBeNull();
    expect(c.size).toBe(0); // a dead entry is dropped
  });

  it('a hit needs the credential that verified the token, unexpired', () => {
    const c = new VerifiedTokenCache(10);
    c.set('x', entry(record('k1', 3000), 5000));
    expect(c.get('x', 'd-1', 2999)).not.toBeNull();
    expect(c.get('x', 'd-1', 3000)).toBeNull();
    c.set('y', entry(record('k2'), 5000)); // verified by k1, but the record has only k2: not kept
    expect(c.size).toBe(0);
  });

  it('keeps at most two tokens per principal: a device cycling tokens cannot push the fleet out', () => {
    const c = new VerifiedTokenCache(100);
    const r = record('k1');
    for (const k of ['a', 'b', 'c', 'd']) c.set(k, entry(r, 5000));
    c.set('other', entry(record('k1'), 5000, 'd-2'));
    expect(c.size).toBe(3);
    expect(c.get('b', 'd-1', 200)).toBeNull();
    expect(c.get('c', 'd-1', 200)).not.toBeNull();
    expect(c.get('d', 'd-1', 200)).not.toBeNull();
    expect(c.get('other', 'd-2', 200)).not.toBeNull();
  });

  it('is LRU-bounded, and a change to a principal drops all its tokens', () => {
    const c = new VerifiedTokenCache(3);
    for (const p of ['p-a', 'p-b', 'p-c']) c.set(p, entry(record('k1'), 5000, p));
    expect(c.get('p-a', 'p-a', 200)).not.toBeNull(); // p-a is now the most recent
    c.set('p-d', entry(record('k1'), 5000, 'p-d'));
    expect(c.size).toBe(3);
    expect(c.get('p-b', 'p-b', 200)).toBeNull();
    c.set('p-d2', entry(record('k1'), 5000, 'p-d'));
    c.invalidate('p-d');
    expect(c.size).toBe(1);
    expect(c.get('p-a', 'p-a', 200)).not.toBeNull();
    const r = record('k1');
    const off = new VerifiedTokenCache(0);
    off.set('a', entry(r, 5000));
    expect(off.size).toBe(0);
    expect(off.enabled).toBe(false);
  });
});

describe('in the authenticate hook', () => {
  it('a reused token skips the verification; blocked, will and client-id binding are still checked every time', async () => {
    const device = keyPair();
    await registry.devices.create({ id: 'thermo-1', key: parsePublicKey(pem(device.publicKey)) }, 'test');
    const on = hook(100);
    const token = await mint('thermo-1', device.privateKey);
    expect(await on.connect('thermo-1', token)).toEqual({ connack: 0, reason: 'accepted' });
    expect(await on.connect('thermo-1', token)).toEqual({ connack: 0, reason: 'accepted' });
    expect(on.counts()).toEqual({ hits: 1, verifies: 1 });
    // the same bytes under another client id: verified again (and refused), never a hit
    await registry.devices.create({ id: 'thermo-2', key: parsePublicKey(pem(keyPair().publicKey)) }, 'test');
    expect(await on.connect('thermo-2', token)).toMatchObject({ connack: 4 });
    // the will is checked on a hit
    expect(await on.connect('thermo-1', token, 'devices/thermo-2/state')).toEqual({ connack: 5, reason: 'will_not_allowed' });
    expect(await on.connect('thermo-1', token, 'devices/thermo-1/state')).toMatchObject({ connack: 0 });
    // blocked: the change feed drops the entry; the verification runs and the block refuses it
    await registry.devices.update('thermo-1', { blocked: true }, 'test');
    expect(on.verifiedTokens.size).toBe(0);
    expect(await on.connect('thermo-1', token)).toEqual({ connack: 5, reason: 'principal_blocked' });
    expect(await on.connect('thermo-1', token)).toEqual({ connack: 5, reason: 'principal_blocked' });
    await registry.devices.update('thermo-1', { blocked: false }, 'test');
    expect(await on.connect('thermo-1', token)).toMatchObject({ connack: 0 });
    // exp + tolerance: refused as expired, exactly when an uncached check refuses it
    now = START + 60_000 + TOLERANCE_S * 1000 - 1;
    expect(await on.connect('thermo-1', token)).toMatchObject({ connack: 0 });
    now += 1;
    expect(await on.connect('thermo-1', token)).toEqual({ connack: 4, reason: 'token_expired' });
  });

  it('a removed key ends its tokens at once', async () => {
    const a = keyPair();
    const b = keyPair();
    const kidA = (await registry.devices.create({ id: 'lock-1', key: parsePublicKey(pem(a.publicKey)) }, 'test')).credentials[0]!.kid;
    await registry.devices.addCredential('lock-1', parsePublicKey(pem(b.publicKey)), null, 'test');
    const on = hook(100);
    const token = await mint('lock-1', a.privateKey);
    await on.connect('lock-1', token);
    expect(await on.connect('lock-1', token)).toMatchObject({ connack: 0 });
    await registry.devices.removeCredential('lock-1', kidA, 'test');
    expect(await on.connect('lock-1', token)).toMatchObject({ connack: 4, reason: 'signature_invalid' });
  });

  it('with requireJti nothing is cached: a token is accepted once', async () => {
    const device = keyPair();
    await registry.devices.create({ id: 'thermo-1', key: parsePublicKey(pem(device.publicKey)) }, 'test');
    const on = hook(100, { requireJti: true });
    const token = await mint('thermo-1', device.privateKey, { jti: true });
    expect(await on.connect('thermo-1', token)).toMatchObject({ connack: 0 });
    expect(await on.connect('thermo-1', token)).toEqual({ connack: 4, reason: 'jti_replayed' });
    expect(on.verifiedTokens.size).toBe(0);
    expect(on.counts().hits).toBe(0);
  });
});

describe('differential: the same decisions with the cache on and off, and with a verify thread', () => {
  for (const seed of [1, 2, 3]) {
    it(`randomized run, seed ${seed}: every CONNECT gets the same CONNACK and reason from all three`, async () => {
      const random = seeded(seed);
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
      const ids = ['dev-a', 'dev-b', 'dev-c', 'dev-d'];
      const keys = new Map(ids.map((id) => [id, [keyPair(), keyPair(), keyPair()]]));
      for (const id of ids.slice(0, 3)) await registry.devices.create({ id, key: parsePublicKey(pem(keys.get(id)![0]!.publicKey)) }, 'test');
      // the cache is smaller than the token pool, so eviction is exercised too
      const on = hook(12);
      const off = hook(0);
      const threaded = hook(12, { verifyThreads: 1 });
      const pool: Array<{ subject: string; token: string }> = [];
      const kidsOf = async (id: string) => ((await registry.findPrincipal(id))?.credentials ?? []).map((c) => c.kid);
      const mintOne = async () => {
        const subject = pick(ids);
        const kid = random() < 0.3 ? pick([...(await kidsOf(subject)), 'k-unknown']) : undefined;
        const roll = random();
        // mostly the key each device is registered with first
        let token = await mint(subject, (random() < 0.7 ? keys.get(subject)![0]! : pick(keys.get(subject)!)).privateKey, {
          ttl: 30 + Math.floor(random() * 600),
          ...(kid === undefined ? {} : { kid }),
          // some issued in the future (beyond the tolerance: refused until the clock catches up)
          offsetMs: roll < 0.1 ? (200 + Math.floor(random() * 400)) * 1000 : 0,
        });
        if (roll > 0.93) token = token.slice(0, -2) + (token.endsWith('A') ? 'BA' : 'AB'); // tampered signature
        pool.push({ subject, token });
      };
      const registryEvent = async () => {
        const id = pick(ids);
        try {
          const r = random();
          if (r < 0.25) await registry.devices.update(id, { blocked: random() < 0.5 }, 'test');
          else if (r < 0.45) await registry.devices.addCredential(id, parsePublicKey(pem(pick(keys.get(id)!).publicKey)), random() < 0.5 ? null : now + Math.floor(random() * 300_000), 'test');
          else if (r < 0.65) await registry.devices.removeCredential(id, pick(await kidsOf(id)), 'test');
          else if (r < 0.75) await registry.devices.delete(id, 'test');
          else await registry.devices.create({ id, key: parsePublicKey(pem(pick(keys.get(id)!).publicKey)) }, 'test');
        } catch {
          // refused by the registry (already exists, last key, unknown): nothing changed
        }
      };
      for (let i = 0; i < 20; i++) await mintOne();
      const seen = new Map<string, number>();
      let compared = 0;
      for (let step = 0; step < 1500; step++) {
        const r = random();
        if (r < 0.65) {
          // mostly a recent token (devices reconnect with the token they hold), sometimes any old one
          const { subject, token } = random() < 0.8 ? pick(pool.slice(-10)) : pick(pool);
          // mostly its own subject, sometimes another id (client-id binding)
          const clientId = random() < 0.85 ? subject : pick(ids);
          const will = random() < 0.1 ? pick([`devices/${clientId}/state`, 'devices/other/state']) : undefined;
          const a = await on.connect(clientId, token, will);
          const b = await off.connect(clientId, token, will);
          const c = await threaded.connect(clientId, token, will);
          expect(a, `step ${step}: ${clientId}`).toEqual(b);
          expect(c, `step ${step}: ${clientId} (verify thread)`).toEqual(b);
          seen.set(a.reason, (seen.get(a.reason) ?? 0) + 1);
          compared++;
        } else if (r < 0.77) {
          await mintOne();
        } else if (r < 0.95) {
          // forward mostly, sometimes back a little (a clock step)
          now += random() < 0.1 ? -Math.floor(random() * 20_000) : Math.floor(random() * 30_000);
        } else {
          await registryEvent();
        }
      }
      // the run exercised the cache and reached every kind of decision it can change
      expect(compared).toBeGreaterThan(800);
      expect(on.counts().hits).toBeGreaterThan(50);
      expect(on.counts().verifies + on.counts().hits).toBe(off.counts().verifies);
      expect(threaded.counts()).toEqual(on.counts());
      expect(threaded.verifyPool?.checked).toBeGreaterThan(100);
      for (const reason of ['accepted', 'principal_blocked', 'will_not_allowed', 'token_expired', 'signature_invalid', 'unknown_principal', 'unknown_credential']) {
        expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(0);
      }
    });
  }
});

describe('over the wire', () => {
  let fx: BrokerFixture | null = null;
  afterEach(async () => {
    await fx?.close();
    fx = null;
  });

  it('a reconnect with the same token is a cache hit; blocking refuses it at once (createBroker wiring)', async () => {
    fx = await startBroker({ authFailureLimit: 0 });
    const d = await fx.device('thermo-9');
    const token = await d.token();
    for (let i = 0; i < 3; i++) expect(await connackFor(fx.port, { clientId: 'thermo-9', username: 'u', password: token })).toBe(0);
    expect(await fx.metric('latchkey_broker_verified_token_cache_hits_total')).toBe(2);
    await fx.registry.devices.update('thermo-9', { blocked: true }, 'test');
    expect(await connackFor(fx.port, { clientId: 'thermo-9', username: 'u', password: token })).toBe(5);
    expect(await fx.metric('latchkey_broker_verified_token_cache_hits_total')).toBe(2);
  });
});
