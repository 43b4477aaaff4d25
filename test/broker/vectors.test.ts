/**
 * test/fixtures/vectors.json over a real socket: each case is a hand-built CONNECT
 * (client id, password = token) against the broker at the vectors' `now`; the CONNACK code must
 * match, and the internal reason must be the one the broker counted (never sent to the client).
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

for (const [rulesKey, cases] of groups) {
  describe(`vectors with rules ${rulesKey}`, () => {
    let fx: BrokerFixture;
    beforeAll(async () => {
      fx = await startBroker({ ...vectors.rules, ...(JSON.parse(rulesKey) as object), authFailureLimit: 0 }, testClock(vectors.now * 1000));
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
        const code = await connackFor(fx.port, {
          clientId: c.clientId,
          username: 'any',
          ...(c.token === null ? {} : { password: c.token }),
        });
        expect(code).toBe(Number(c.expectedConnack));
        expect(await fx.metric('latchkey_broker_connects_total', labels)).toBe(before + 1);
      });
    }
  });
}
