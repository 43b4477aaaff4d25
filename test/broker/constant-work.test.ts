/**
 * Issue 16, finding 3: a junk-signed token was refused with CONNACK 4 either way, but a
 * registered id took 0.13–0.33 ms longer (its key was verified; an unknown id's was not). Now an
 * unknown principal's token goes through the same steps against a decoy P-256 key, and unknown ids
 * are cached like known ones. The timing itself is measured by `npm run bench -- connect-timing`;
 * these tests prove deterministically, with real crypto and a real registry, that the same steps
 * run: a token signed with the decoy's private key (which only a test can hold) gets past the
 * signature check of an unknown principal and on to the claims, exactly as a known device's does.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN_RULES, isProtocolError, parsePublicKey } from '@latchkey/device-sdk/protocol';
import { createAuthenticate } from '../../broker/src/auth/authenticate.ts';
import { CredentialCache } from '../../broker/src/auth/credential-cache.ts';
import { FailureThrottle } from '../../broker/src/auth/failure-throttle.ts';
import { JtiCache } from '../../broker/src/auth/jti-cache.ts';
import { SessionTable } from '../../broker/src/auth/session-table.ts';
import type { AuthFailureRecord, BrokerRegistryPort } from '../../broker/src/registry-port.ts';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { openRegistry, type Registry } from '../../provisioning/src/registry/index.ts';
import { connackFor } from './helpers/raw-mqtt.ts';
import { startBroker, type BrokerFixture } from './helpers/broker-fixture.ts';

const NOW = 1_800_000_000_000;
const clock = () => NOW;
const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

let dir: string;
let registry: Registry;
let lookups: string[];
let port: BrokerRegistryPort;
const decoy = keyPair();
const device = keyPair();
const stranger = keyPair();
let kid: string;

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'latchkey-constant-'));
  registry = await openRegistry(path.join(dir, 'db'), { clock });
  kid = (await registry.devices.create({ id: 'thermo-1', key: parsePublicKey(device.publicKey.export({ type: 'spki', format: 'pem' }) as string) }, 'test')).credentials[0]!.kid;
  lookups = [];
  // the real registry, with its lookups counted
  port = Object.assign(Object.create(registry) as Registry, {
    findPrincipal: (p: string) => {
      lookups.push(p);
      return registry.findPrincipal(p);
    },
  });
});
afterEach(async () => {
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  connack: number;
  reason: string;
  /** the internal reason of the step the token failed at, for an unknown principal: what the decoy check said */
  step: string | null;
}

function harness(opts: { requireJti?: boolean } = {}) {
  const credentials = new CredentialCache(port, 16, () => {}, decoy.publicKey);
  registry.onChange((c) => credentials.invalidate(c.principal));
  const jtis = opts.requireJti ? new JtiCache({ capacity: 100, toleranceMs: 0 }) : null;
  let last: { failure: AuthFailureRecord; cause: unknown } | null = null;
  const authenticate = createAuthenticate({
    rules: { ...DEFAULT_TOKEN_RULES, requireJti: opts.requireJti ?? false },
    clock,
    credentials,
    throttle: new FailureThrottle({ limit: 0, windowMs: 60_000, capacity: 10 }),
    feedDownForMs: () => 0,
    jtis,
    sessions: new SessionTable(() => {}),
    unavailable: () => false,
    supersede: () => {},
    emptyClientIds: new WeakSet(),
    remoteAddressOf: () => '192.0.2.1',
    timeoutMs: 5_000,
    observeVerify: () => {},
    onAccepted: () => {},
    onRefused: (failure, _notice, cause) => {
      last = { failure, cause };
    },
  });
  /** One CONNECT through the real hook; a plain record stands in for aedes's client object. */
  const connect = (clientId: string, token: string): Promise<Outcome> =>
    new Promise((resolve) => {
      const client = { id: clientId, closed: false, clean: true, _will: null, conn: {} } as unknown as Client;
      last = null;
      authenticate(client, 'u', Buffer.from(token), (err) => {
        // the refusal is reported right after aedes's callback
        setImmediate(() => settled(err));
      });
      function settled(err: unknown): void {
        const refused = last as { failure: AuthFailureRecord; cause: unknown } | null;
        const cause = refused?.cause;
        resolve({
          connack: err === null ? 0 : ((err as { returnCode?: number }).returnCode ?? 5),
          reason: err === null ? 'accepted' : (refused?.failure.reason ?? '?'),
          step: isProtocolError(cause) ? cause.code : null,
        });
      }
    });
  return { connect, credentials, jtis };
}

const mint = async (subject: string, privateKey = stranger.privateKey, over: { expired?: boolean; kid?: string; jti?: boolean } = {}) =>
  (
    await mintConnectToken({
      subject,
      privateKey,
      ttlSeconds: 60,
      ...(over.kid === undefined ? {} : { kid: over.kid }),
      ...(over.jti ? { jti: true } : {}),
      clock: over.expired ? () => NOW - 3_600_000 : clock,
    })
  ).token;

describe('an unknown principal goes through the same steps as a known one', () => {
  it('a junk signature fails at the signature step either way; the client sees 4 either way', async () => {
    const { connect } = harness();
    expect(await connect('thermo-1', await mint('thermo-1'))).toEqual({ connack: 4, reason: 'signature_invalid', step: null });
    expect(await connect('ghost-1', await mint('ghost-1'))).toEqual({ connack: 4, reason: 'unknown_principal', step: 'signature_invalid' });
  });

  it('the decoy is a real key that is really verified: its signature passes, then the claims are checked', async () => {
    const { connect } = harness();
    // a known device's own key, expired token: past the signature, refused at the claims
    expect(await connect('thermo-1', await mint('thermo-1', device.privateKey, { expired: true }))).toMatchObject({ reason: 'token_expired' });
    // the same for an unknown id with the decoy's key: the same step is reached
    expect(await connect('ghost-1', await mint('ghost-1', decoy.privateKey, { expired: true }))).toEqual({ connack: 4, reason: 'unknown_principal', step: 'token_expired' });
  });

  it('the decoy never lets anyone in, and its jti is not recorded', async () => {
    const { connect, jtis } = harness({ requireJti: true });
    expect(await connect('ghost-1', await mint('ghost-1', decoy.privateKey, { jti: true }))).toMatchObject({ connack: 4, reason: 'unknown_principal' });
    expect(jtis?.size).toBe(0);
    expect(await connect('thermo-1', await mint('thermo-1', device.privateKey, { jti: true }))).toMatchObject({ connack: 0 });
    expect(jtis?.size).toBe(1);
  });

  it('a kid picks nothing for an unknown id, as a wrong kid picks nothing for a known one', async () => {
    const { connect, credentials } = harness();
    expect(await connect('thermo-1', await mint('thermo-1', stranger.privateKey, { kid: 'k-nope' }))).toMatchObject({ reason: 'unknown_credential' });
    expect(await connect('ghost-1', await mint('ghost-1', decoy.privateKey, { kid: 'k-nope' }))).toMatchObject({ reason: 'unknown_principal', step: 'unknown_credential' });
    // the decoy's own kid is random per process: no token can name it
    expect(credentials.decoyKid).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect((await credentials.load('ghost-2')).credentials.map((c) => c.kid)).toEqual([credentials.decoyKid]);
    expect(harness().credentials.decoyKid).not.toBe(credentials.decoyKid);
    expect(kid).not.toBe(credentials.decoyKid);
  });

  it('unknown ids are cached like known ones, until the registry creates them', async () => {
    const { connect } = harness();
    for (let i = 0; i < 3; i++) {
      await connect('thermo-1', await mint('thermo-1'));
      await connect('ghost-1', await mint('ghost-1'));
    }
    expect(lookups).toEqual(['thermo-1', 'ghost-1']); // one registry lookup each, then map hits
    await registry.devices.create({ id: 'ghost-1', key: parsePublicKey(decoy.publicKey.export({ type: 'spki', format: 'pem' }) as string) }, 'test');
    expect(await connect('ghost-1', await mint('ghost-1', decoy.privateKey))).toMatchObject({ connack: 0 });
    expect(lookups).toEqual(['thermo-1', 'ghost-1', 'ghost-1']);
  });

  it('the unknown-id cache is bounded like the key cache', async () => {
    const { credentials } = harness();
    for (let i = 0; i < 40; i++) await credentials.load(`ghost-${i}`);
    lookups = [];
    await credentials.load('ghost-39');
    await credentials.load('ghost-0');
    expect(lookups).toEqual(['ghost-0']); // capacity 16: the oldest was forgotten, the newest kept
  });
});

describe('over the wire', () => {
  let fx: BrokerFixture | null = null;
  afterEach(async () => {
    await fx?.close();
    fx = null;
  });

  it('an id probed while unknown connects as soon as it is registered (the unknown-id cache is invalidated)', async () => {
    fx = await startBroker({ authFailureLimit: 0 });
    const bad = (await mintConnectToken({ subject: 'late-1', privateKey: stranger.privateKey, clock: fx.clock })).token;
    expect(await connackFor(fx.port, { clientId: 'late-1', username: 'u', password: bad })).toBe(4);
    expect(await connackFor(fx.port, { clientId: 'late-1', username: 'u', password: bad })).toBe(4);
    const late = await fx.device('late-1');
    expect(await connackFor(fx.port, { clientId: 'late-1', username: 'u', password: await late.token() })).toBe(0);
  });
});
