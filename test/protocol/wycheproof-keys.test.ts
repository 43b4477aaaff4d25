import { describe, expect, it } from 'vitest';
import { KEY_ERROR_CODES, ProtocolError } from '../../device-sdk/src/protocol/errors.ts';
import { parsePublicKey } from '../../device-sdk/src/protocol/public-key.ts';
import { readWycheproof } from '../helpers/wycheproof.ts';

interface Case {
  tcId: number;
  comment: string;
  flags: string[];
  public: unknown;
  result: 'valid' | 'invalid' | 'acceptable';
}

function loadCases(file: string): Case[] {
  const suite = readWycheproof<{ testGroups: { tests: Case[] }[] }>(file);
  const cases = suite.testGroups.flatMap((g) => g.tests);
  // Many cases share one public key with different private keys: test each key once, under
  // the strictest verdict any of its cases gives (invalid beats acceptable beats valid).
  const rank = { valid: 0, acceptable: 1, invalid: 2 } as const;
  const byKey = new Map<string, Case>();
  for (const c of cases) {
    const key = JSON.stringify(c.public);
    const seen = byKey.get(key);
    if (seen && Math.abs(rank[seen.result] - rank[c.result]) === 2) {
      throw new Error(`one key is both valid and invalid: tcId ${seen.tcId}, ${c.tcId}`);
    }
    if (!seen || rank[c.result] > rank[seen.result]) byKey.set(key, c);
  }
  return [...byKey.values()];
}

function outcome(input: unknown): { ok: true } | { ok: false; error: unknown } {
  try {
    // an accepted key must also be usable: the KeyObject is built lazily, so build it here
    const parsed = parsePublicKey(input, { now: 0 });
    if (parsed.key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('accepted key is not P-256');
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

const KEY_CODES: readonly string[] = KEY_ERROR_CODES;

describe.each([
  ['ecdh_secp256r1_webcrypto_test.json (JWK)', 'ecdh_secp256r1_webcrypto_test.json'],
  ['ecdh_secp256r1_pem_test.json (PEM)', 'ecdh_secp256r1_pem_test.json'],
])('Wycheproof %s', (_name, file) => {
  const cases = loadCases(file);
  const valid = cases.filter((c) => c.result === 'valid');
  const invalid = cases.filter((c) => c.result === 'invalid');
  const acceptable = cases.filter((c) => c.result === 'acceptable');

  it('has cases of each verdict to check', () => {
    expect(valid.length).toBeGreaterThan(50);
    expect(invalid.length).toBeGreaterThan(10);
  });

  it.each(valid.map((c) => [c.tcId, c.comment, c] as const))('valid #%i (%s) is accepted', (_id, _c, c) => {
    const r = outcome(c.public);
    expect(r.ok ? 'accepted' : (r.error as ProtocolError).code).toBe('accepted');
  });

  it.each(invalid.map((c) => [c.tcId, c.flags.join(','), c] as const))('invalid #%i (%s) is refused', (_id, _f, c) => {
    const r = outcome(c.public);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(ProtocolError);
      expect(KEY_CODES).toContain((r.error as ProtocolError).code);
    }
  });

  it('acceptable cases either parse or fail with a key ProtocolError', () => {
    for (const c of acceptable) {
      const r = outcome(c.public);
      if (!r.ok) {
        expect(r.error, `tcId ${c.tcId}`).toBeInstanceOf(ProtocolError);
        expect(KEY_CODES).toContain((r.error as ProtocolError).code);
      }
    }
  });
});

describe('Wycheproof refusal reasons', () => {
  const pem = loadCases('ecdh_secp256r1_pem_test.json');
  const codeOf = (c: Case): string => {
    const r = outcome(c.public);
    return r.ok ? 'accepted' : (r.error as ProtocolError).code;
  };

  it('other named curves are unsupported_curve', () => {
    const wrong = pem.filter((c) => c.flags.includes('WrongCurve') && !c.flags.includes('CompressedPoint'));
    expect(wrong.length).toBeGreaterThan(5);
    for (const c of wrong) expect(codeOf(c), `tcId ${c.tcId}`).toBe('unsupported_curve');
  });

  it('explicit curve parameters are unsupported_curve (RFC 5480 §2.1.1)', () => {
    const unnamed = pem.filter((c) => c.flags.includes('UnnamedCurve'));
    expect(unnamed.length).toBeGreaterThan(5);
    for (const c of unnamed) expect(codeOf(c), `tcId ${c.tcId}`).toBe('unsupported_curve');
  });

  it('off-curve and twist points are invalid_public_key', () => {
    const offCurve = pem.filter(
      (c) =>
        c.flags.includes('InvalidCurveAttack') ||
        c.flags.includes('ModifiedPublicPoint') ||
        c.flags.includes('InvalidCompressedPublic') ||
        (c.flags.includes('WrongCurve') && c.flags.includes('CompressedPoint')),
    );
    expect(offCurve.length).toBeGreaterThan(15);
    for (const c of offCurve) expect(codeOf(c), `tcId ${c.tcId}`).toBe('invalid_public_key');
  });
});
