import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CONNACK_FOR,
  ProtocolError,
  parseClientId,
  verifyToken,
  type AuthFailureCode,
  type VerifiableCredential,
} from '@latchkey/device-sdk/protocol';

interface Vector {
  name: string;
  clientId: string;
  token: string | null;
  expectedConnack: number;
  reason: AuthFailureCode | null;
  rules?: Record<string, unknown>;
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors.json', import.meta.url), 'utf8')) as {
  now: number;
  rules: { audience: string; maxTokenLifetime: number; clockTolerance: number; requireJti: boolean };
  principals: { principal: string; blocked: boolean; publicKey: string }[];
  cases: Vector[];
};

const registry = new Map(
  vectors.principals.map((p) => [
    p.principal,
    { blocked: p.blocked, creds: [{ kid: `k-${p.principal}`, key: createPublicKey(p.publicKey), expiresAt: null }] as VerifiableCredential[] },
  ]),
);

/** The broker's authenticate steps, without sockets: client id → token → blocked. */
function authenticate(v: Vector): { connack: number; reason: AuthFailureCode | null } {
  const id = parseClientId(v.clientId);
  if (id === null) return { connack: CONNACK_FOR.client_id_invalid, reason: 'client_id_invalid' };
  try {
    if (v.token === null) throw new ProtocolError('token_missing', 'no password');
    verifyToken(v.token, {
      ...vectors.rules,
      ...v.rules,
      now: vectors.now * 1000,
      principal: id.principal,
      resolveCredentials: (p) => registry.get(p)?.creds ?? null,
    });
    if (registry.get(id.principal)?.blocked) return { connack: 5, reason: 'principal_blocked' };
    return { connack: 0, reason: null };
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    const reason = e.code as AuthFailureCode;
    return { connack: CONNACK_FOR[reason], reason };
  }
}

describe('test/fixtures/vectors.json (protocol.md §The connect token)', () => {
  it('covers every CONNACK row and the attack classes the spec names', () => {
    const names = vectors.cases.map((c) => c.name).join('\n');
    for (const needle of ['alg none', 'alg None', 'HS256', 'embedded jwk', 'jku', 'x5u', 'x5t', 'crit', 'zip', 'enc', 'b64', 'unknown header', 'byte-order mark', 'duplicate', 'r = s = 0', 'DER', '63-byte', 'ES384', 'RS256', '1e999', 'exp 1.5', 'padded', 'space', 'missing sub', 'lifetime over', 'audience mismatch', 'subject mismatch']) {
      expect(names).toContain(needle);
    }
    expect(new Set(vectors.cases.map((c) => c.expectedConnack))).toEqual(new Set([0, 2, 4, 5]));
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, v) => {
    expect(authenticate(v)).toEqual({ connack: v.expectedConnack, reason: v.reason });
  });

  it('every refusal reason maps to the CONNACK code its vector expects', () => {
    for (const v of vectors.cases) if (v.reason) expect(CONNACK_FOR[v.reason]).toBe(v.expectedConnack);
  });
});
