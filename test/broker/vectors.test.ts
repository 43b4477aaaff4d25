/**
 * test/fixtures/vectors.json over a real socket: each case is a hand-built CONNECT
 * (client id, password = token) against the broker at the vectors' `now`; the CONNACK code must
 * match, and the internal reason must be the one the broker counted (never sent to the client).
 * Issue 12: every group runs with the verified-token cache off and on, with the signatures checked
 * on the main thread and on a verify thread (`verifyThreads` 0 and 1), and (except single-use
 * `requireJti` tokens) each case is sent three times in a row: the same answer every time.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '@latchkey/device-sdk/protocol';
import { connackFor } from './helpers/raw-mqtt.ts';
import { startBroker, testClock, type BrokerFixture } from './helpers/broker-fixture.ts';

interface VectorCase {
  name: string;
  clientId: string;
  token: string | null;
  expectedConnack: number;
  reason: string | null;
  rules?: Record<string, unknown>;
}
interface Vectors {
  now: number;
  rules: { audience: string; maxTokenLifetime: number; clockTolerance: number; requireJti: boolean };
  principals: Array<{ principal: string; kind: 'device' | 'service'; blocked: boolean; publicKey: string; acl?: { publish: string[]; subscribe: string[] } }>;
  cases: VectorCase[];
}

const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors.json', import.meta.url), 'utf8')) as Vectors;
const groups = new Map<string, VectorCase[]>();
for (const c of vectors.cases) {
  const key = JSON.stringify(c.rules ?? {});
  groups.set(key, [...(groups.get(key) ?? []), c]);
}

it('the vector file has cases for every CONNACK code the broker sends', () => {
  expect(new Set(vectors.cases.map((c) => Number(c.expectedConnack)))).toEqual(new Set([0, 2, 4, 5]));
});

for (const [rulesKey, cases] of groups) for (const verifiedTokenCacheSize of [0, 1000]) for (const verifyThreads of [0, 1]) {
  const rules = { ...vectors.rules, ...(JSON.parse(rulesKey) as object) };
  const times = rules.requireJti ? 1 : 3;
  describe(`vectors with rules ${rulesKey}, verified-token cache ${verifiedTokenCacheSize === 0 ? 'off' : 'on'}, verify threads ${verifyThreads}`, () => {
    let fx: BrokerFixture;
    beforeAll(async () => {
      fx = await startBroker({ ...rules, authFailureLimit: 0, verifiedTokenCacheSize, verifyThreads }, testClock(vectors.now * 1000));
      for (const p of vectors.principals) {
        const key = parsePublicKey(p.publicKey);
        if (p.kind === 'service') {
          await fx.registry.services.create({ name: p.principal.slice('svc:'.length), key, acl: p.acl ?? { publish: [], subscribe: [] } }, 'test');
        } else {
          await fx.registry.devices.create({ id: p.principal, key }, 'test');
          if (p.blocked) await fx.registry.devices.update(p.principal, { blocked: true }, 'test');
        }
      }
    });
    afterAll(() => fx.close());

    for (const c of cases) {
      it(`${c.name} → CONNACK ${c.expectedConnack}${c.reason === null ? '' : ` (${c.reason})`}`, async () => {
        const labels: Record<string, string> = c.reason === null ? { result: 'accepted' } : { result: 'refused', reason: c.reason };
        const before = await fx.metric('latchkey_broker_connects_total', labels);
        for (let i = 0; i < times; i++) {
          const code = await connackFor(fx.port, {
            clientId: c.clientId,
            username: 'any',
            ...(c.token === null ? {} : { password: c.token }),
          });
          expect(code).toBe(Number(c.expectedConnack));
        }
        expect(await fx.metric('latchkey_broker_connects_total', labels)).toBe(before + times);
      });
    }

    it(verifiedTokenCacheSize > 0 && !rules.requireJti ? 'the cache answered repeats of verified tokens' : 'the cache answered nothing', async () => {
      const hits = await fx.metric('latchkey_broker_verified_token_cache_hits_total');
      if (verifiedTokenCacheSize > 0 && !rules.requireJti) expect(hits).toBeGreaterThan(0);
      else expect(hits).toBe(0);
    });

    it(verifyThreads > 0 ? 'the signatures were checked on the verify thread' : 'no verify thread was started', () => {
      if (verifyThreads === 0) expect(fx.broker.verifyPool).toBeNull();
      else expect(fx.broker.verifyPool?.checked).toBeGreaterThan(0);
    });
  });
}
