/**
 * Issue 12, `verifyThreads`: the connect-token signature check on worker threads (VerifyPool).
 * With real keys and real threads: the pool names the same signer as the inline check for ES256
 * and RS256 tokens, any candidate order, malformed signatures and more keys than a thread keeps;
 * over real sockets, a thread that ends with connects in flight refuses them with CONNACK 3
 * (known and unknown ids alike: a crash must not tell which ids exist), counts the failure, and
 * the pool recovers; closing the broker ends its threads.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_GCP_TOKEN_RULES,
  GCP_DIALECT,
  findSigner,
  isProtocolError,
  prepareTokenVerification,
  type PreparedToken,
  type VerifiableCredential,
} from '@latchkey/device-sdk/protocol';
import { VerifyPool } from '../../broker/src/auth/verify-pool.ts';
import { connackFor } from './helpers/raw-mqtt.ts';
import { startBroker, type BrokerFixture } from './helpers/broker-fixture.ts';
import { seeded } from '../helpers/seeded.ts';

const NOW = 1_800_000_000_000;
const es = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });

/** A compact JWS as Cloud IoT Core firmware signs it (ES256 or RS256), its signature optionally bent. */
function jws(alg: 'ES256' | 'RS256', key: KeyObject, kid?: string, bend: (sig: Buffer) => Buffer = (s) => s): string {
  const header = Buffer.from(JSON.stringify({ alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ aud: 'acme-iot', iat: NOW / 1000 - 10, exp: NOW / 1000 + 600 })).toString('base64url');
  const input = `${header}.${payload}`;
  const sig = sign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${bend(sig).toString('base64url')}`;
}

const prepare = (token: string, creds: readonly VerifiableCredential[]): PreparedToken =>
  prepareTokenVerification(token, { ...DEFAULT_GCP_TOKEN_RULES, audience: 'acme-iot', requireJti: false, dialect: GCP_DIALECT, now: NOW, principal: 'thermo-1', resolveCredentials: () => creds });

/** The inline answer: the kid that verifies, or null for signature_invalid. */
function inline(prepared: PreparedToken): string | null {
  try {
    return findSigner(prepared);
  } catch (err) {
    if (isProtocolError(err) && err.code === 'signature_invalid') return null;
    throw err;
  }
}

const pools: VerifyPool[] = [];
let fx: BrokerFixture | null = null;
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
  await fx?.close();
  fx = null;
});

describe('the pool', () => {
  it('names the same signer as the inline check: ES256 and RS256, any candidate order, bent signatures, more keys than a thread keeps', async () => {
    const failures: unknown[] = [];
    const pool = new VerifyPool({ threads: 2, keyCacheSize: 64, onThreadFailure: (err) => failures.push(err) });
    pools.push(pool);
    const random = seeded(7);
    const ecKeys = Array.from({ length: 90 }, (_, i) => ({ kid: `e${i}`, pair: es() }));
    const rsaKeys = Array.from({ length: 3 }, (_, i) => ({ kid: `r${i}`, pair: rsa() }));
    const all = [...ecKeys, ...rsaKeys];
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const bends: Array<(s: Buffer) => Buffer> = [
      (s) => s,
      (s) => s,
      (s) => Buffer.concat([s.subarray(0, 10), Buffer.from([s[10]! ^ 1]), s.subarray(11)]), // one bit
      (s) => s.subarray(1), // one byte short
      (s) => Buffer.concat([s, Buffer.from([0])]), // one byte long
    ];
    const cases: PreparedToken[] = [];
    for (let i = 0; i < 400; i++) {
      const signer = random() < 0.15 ? pick(rsaKeys) : pick(ecKeys);
      const alg = signer.kid.startsWith('r') ? 'RS256' : 'ES256';
      // the signer among up to 4 others of both types, in any order, sometimes absent
      const creds = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(all));
      if (random() < 0.8) creds.splice(Math.floor(random() * (creds.length + 1)), 0, signer);
      const unique = [...new Map(creds.map((c) => [c.kid, c])).values()].map((c) => ({ kid: c.kid, key: c.pair.publicKey, expiresAt: null }));
      let prepared: PreparedToken;
      try {
        prepared = prepare(jws(alg, signer.pair.privateKey, undefined, pick(bends)), unique);
      } catch {
        continue; // alg_key_mismatch: no credential of the token's type, never a signature check
      }
      cases.push(prepared);
    }
    expect(cases.length).toBeGreaterThan(300);
    // all at once: batched, over both threads, past the 64 keys each thread keeps
    const answers = await Promise.all(cases.map((c) => pool.findSigner(c)));
    const expected = cases.map(inline);
    expect(answers).toEqual(expected);
    expect(expected.filter((k) => k !== null).length).toBeGreaterThan(100);
    expect(expected.filter((k) => k === null).length).toBeGreaterThan(50);
    // and one at a time, after the batches
    for (const c of cases.slice(0, 40)) expect(await pool.findSigner(c)).toBe(inline(c));
    expect(failures).toEqual([]);
    expect(pool.running).toBe(2);
  });

  it('a thread that ends fails the jobs it holds and is replaced; close fails what is queued', async () => {
    const failures: unknown[] = [];
    const pool = new VerifyPool({ threads: 1, keyCacheSize: 64, onThreadFailure: (err) => failures.push(err) });
    pools.push(pool);
    const { privateKey, publicKey } = es();
    const prepared = prepare(jws('ES256', privateKey), [{ kid: 'k', key: publicKey, expiresAt: null }]);
    expect(await pool.findSigner(prepared)).toBe('k');
    // the crash message is ahead of the job: the thread never answers it
    pool.crashThreadForTesting(0);
    await expect(pool.findSigner(prepared)).rejects.toThrow('the verify thread ended before answering');
    expect(failures).toHaveLength(1);
    expect(await pool.findSigner(prepared)).toBe('k');
    // terminated right after the job was posted
    pool.onPostedForTesting = (i) => {
      pool.onPostedForTesting = null;
      void pool.terminateThreadForTesting(i);
    };
    await expect(pool.findSigner(prepared)).rejects.toThrow('the verify thread ended before answering');
    expect(failures).toHaveLength(2);
    expect(await pool.findSigner(prepared)).toBe('k');
    const queued = expect(pool.findSigner(prepared)).rejects.toThrow('the verify pool is closed');
    await pool.close();
    await queued;
    await expect(pool.findSigner(prepared)).rejects.toThrow('the verify pool is closed');
    expect(pool.running).toBe(0);
    expect(failures).toHaveLength(2);
  });
});

describe('in the broker, over real sockets', () => {
  it('a thread terminated with connects in flight: those get CONNACK 3 (internal_error), the failure is counted, then every connect succeeds', async () => {
    fx = await startBroker({ authFailureLimit: 0, verifyThreads: 1 });
    const f = fx;
    const pool = f.broker.verifyPool as VerifyPool;
    const devices = await Promise.all(Array.from({ length: 8 }, (_, i) => f.device(`thermo-${i}`)));
    // fresh tokens each time: the verified-token cache answers none of them
    const wave = async () => Promise.all(devices.map(async (d) => connackFor(f.port, { clientId: d.id, username: 'u', password: await d.token({ jti: true }) })));
    expect(new Set(await wave())).toEqual(new Set([0]));
    pool.onPostedForTesting = (i) => {
      pool.onPostedForTesting = null;
      void pool.terminateThreadForTesting(i);
    };
    const codes = await wave();
    const refused = codes.filter((c) => c === 3).length;
    expect(refused).toBeGreaterThan(0);
    expect(codes.every((c) => c === 0 || c === 3)).toBe(true);
    expect(await f.metric('latchkey_broker_verify_thread_failures_total')).toBe(1);
    expect(await f.metric('latchkey_broker_connects_total', { result: 'refused', reason: 'internal_error' })).toBe(refused);
    expect(f.log.entries.some((e) => e.level === 'error' && e.msg.startsWith('a verify thread ended'))).toBe(true);
    // the server's failure never counts against the clients' addresses, and the pool is back
    expect(new Set(await wave())).toEqual(new Set([0]));
    expect(pool.running).toBe(1);
  });

  it('a thread that crashes: a known and an unknown id both get CONNACK 3 (a crash tells no id apart), then 0 and 4 again', async () => {
    fx = await startBroker({ authFailureLimit: 0, verifyThreads: 1 });
    const f = fx;
    const pool = f.broker.verifyPool as VerifyPool;
    const known = await f.device('thermo-1');
    const stranger = es();
    const { mintConnectToken } = await import('../../device-sdk/src/token/mint-token.ts');
    const unknownToken = async () => (await mintConnectToken({ subject: 'ghost-1', privateKey: stranger.privateKey, ttlSeconds: 600, clock: f.clock })).token;
    const both = async () => [
      await connackFor(f.port, { clientId: known.id, username: 'u', password: await known.token({ jti: true }) }),
      await connackFor(f.port, { clientId: 'ghost-1', username: 'u', password: await unknownToken() }),
    ];
    expect(await both()).toEqual([0, 4]);
    pool.crashThreadForTesting(0);
    expect(await connackFor(f.port, { clientId: known.id, username: 'u', password: await known.token({ jti: true }) })).toBe(3);
    pool.crashThreadForTesting(0);
    expect(await connackFor(f.port, { clientId: 'ghost-1', username: 'u', password: await unknownToken() })).toBe(3);
    expect(await f.metric('latchkey_broker_verify_thread_failures_total')).toBe(2);
    expect(await both()).toEqual([0, 4]);
  });

  it('closing the broker ends its verify threads', async () => {
    const threads = () => readdirSync('/proc/self/task').length;
    // warm up what starts threads once per process (libuv's pool, the registry), then count
    const warm = await startBroker({ authFailureLimit: 0, verifyThreads: 0 });
    const d = await warm.device('thermo-1');
    expect(await connackFor(warm.port, { clientId: d.id, username: 'u', password: await d.token() })).toBe(0);
    await warm.close();
    const before = threads();
    fx = await startBroker({ authFailureLimit: 0, verifyThreads: 2 });
    const f = fx;
    const devices = await Promise.all([f.device('thermo-1'), f.device('thermo-2'), f.device('thermo-3')]);
    const codes = await Promise.all(devices.map(async (x) => connackFor(f.port, { clientId: x.id, username: 'u', password: await x.token() })));
    expect(codes).toEqual([0, 0, 0]);
    expect(f.broker.verifyPool?.running).toBeGreaterThan(0);
    expect(threads()).toBeGreaterThan(before);
    await f.close();
    fx = null;
    expect(f.broker.verifyPool?.running).toBe(0);
    await expect.poll(threads, { timeout: 5_000 }).toBe(before);
  });
});
