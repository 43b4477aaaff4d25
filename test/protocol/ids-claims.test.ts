import { describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN_RULES, ProtocolError, assertDeviceId, isPrincipal, checkClaims, checkHeader, decodeSegments, parseClientId, parsePrincipal, serviceClientId } from '@latchkey/device-sdk/protocol';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof ProtocolError ? e.code : `foreign:${String(e)}`;
  }
  return 'no error';
};

describe('protocol.md §Device ids and client ids', () => {
  it.each(['abc', 'Thermo-1', 'a.b_c-d', 'A' + 'x'.repeat(63)])('accepts device id %s', (id) => {
    expect(parseClientId(id)).toEqual({ kind: 'device', principal: id, deviceId: id });
  });
  it.each(['', 'ab', '1abc', '-abc', 'a/b', 'a+bc', 'a#bc', 'a bc', "a'bc", 'A' + 'x'.repeat(64), 'svc:ab', 'svc:Name', 'svc:', 'svc:name:', 'svc:name:a/b'])(
    'refuses client id %j',
    (id) => expect(parseClientId(id)).toBeNull(),
  );
  it('parses service-account client ids', () => {
    expect(parseClientId('svc:dashboard')).toEqual({ kind: 'service', principal: 'svc:dashboard', serviceName: 'dashboard', instance: null });
    expect(parseClientId('svc:dashboard:2')).toMatchObject({ principal: 'svc:dashboard', instance: '2' });
  });
  it('knows a principal (token sub): a device id or svc:{name}, never an instance', () => {
    for (const p of ['thermo-1', 'svc:dashboard']) expect(isPrincipal(p)).toBe(true);
    for (const p of ['svc:dashboard:2', 'svc:Dash', 'svc:', 'ab', 'a/b', 7, null]) expect(isPrincipal(p)).toBe(false);
  });
  it('tells the kind of a principal, and builds service client ids (the one home of the svc: form)', () => {
    expect(parsePrincipal('thermo-1')).toEqual({ kind: 'device', deviceId: 'thermo-1' });
    expect(parsePrincipal('svc:dashboard')).toEqual({ kind: 'service', serviceName: 'dashboard' });
    for (const p of ['svc:dashboard:2', 'svc:Dash', 'svc:', 'ab', 7]) expect(parsePrincipal(p)).toBeNull();
    expect(serviceClientId('dashboard')).toBe('svc:dashboard');
    expect(serviceClientId('dashboard', 'worker-2')).toBe('svc:dashboard:worker-2');
    for (const [name, instance] of [['Dash', undefined], ['dashboard', ''], ['dashboard', 'a/b'], ['dashboard', 'x'.repeat(65)]] as const) {
      expect(() => serviceClientId(name, instance)).toThrow(TypeError);
    }
    for (const id of [serviceClientId('dashboard'), serviceClientId('dashboard', 'worker-2')]) expect(parseClientId(id)?.principal).toBe('svc:dashboard');
  });

  it('refuses non-strings', () => {
    expect(parseClientId(undefined)).toBeNull();
    expect(codeOf(() => assertDeviceId(12))).toBe('invalid_device_id');
  });
});

describe('claim rules with an injected clock', () => {
  const now = 1_800_000_000_000;
  const s = now / 1000;
  const base = { sub: 'dev-1', aud: 'latchkey', iat: s - 10, exp: s + 600 };
  const rules = { ...DEFAULT_TOKEN_RULES, clockTolerance: 30, maxTokenLifetime: 3600 };
  it.each([
    [{}, 'ok'],
    [{ iat: s - 100, exp: s - 30 }, 'token_expired'],
    [{ iat: s - 100, exp: s - 29 }, 'ok'],
    [{ iat: s + 30 }, 'ok'],
    [{ iat: s + 31, exp: s + 600 }, 'token_issued_in_future'],
    [{ nbf: s + 31 }, 'token_not_yet_valid'],
    [{ nbf: s + 30 }, 'ok'],
    [{ nbf: 'x' }, 'claim_invalid'],
    [{ exp: s - 10 + 3601 }, 'lifetime_exceeded'],
    [{ jti: '' }, 'claim_invalid'],
    [{ aud: [] }, 'claim_invalid'],
    [{ aud: ['latchkey', 5] }, 'claim_invalid'],
    [{ iat: Number.MAX_SAFE_INTEGER + 1 }, 'claim_invalid'],
  ] as const)('%j → %s', (over, expected) => {
    const result = codeOf(() => checkClaims({ ...base, ...over }, rules, now));
    expect(result === 'no error' ? 'ok' : result).toBe(expected);
  });
  it('requires a jti when configured', () => {
    expect(codeOf(() => checkClaims(base, { ...rules, requireJti: true }, now))).toBe('jti_missing');
    expect(checkClaims({ ...base, jti: 'x' }, { ...rules, requireJti: true }, now).jti).toBe('x');
  });
});

describe('token structure', () => {
  it('refuses an empty or oversized token before parsing', () => {
    expect(codeOf(() => decodeSegments(''))).toBe('token_missing');
    expect(codeOf(() => decodeSegments(new Uint8Array(4097)))).toBe('token_too_large');
    expect(codeOf(() => decodeSegments('a'.repeat(4096)))).toBe('token_malformed');
  });
  it('refuses non-canonical base64url in any segment (RFC 4648 §3.5)', () => {
    // "{}" is e30; e31 decodes to the same bytes with a non-zero unused bit
    expect(Buffer.from('e31', 'base64url').toString()).toBe('{}');
    expect(codeOf(() => decodeSegments('e31.e30.AA'))).toBe('token_malformed');
    expect(codeOf(() => decodeSegments('e30.e31.AA'))).toBe('token_malformed');
    expect(codeOf(() => decodeSegments('e30.e30.AB'))).toBe('token_malformed');
    expect(decodeSegments('e30.e30.AA').signature).toEqual(Buffer.from([0]));
    expect(codeOf(() => decodeSegments('e30.e30.AAAAA'))).toBe('token_malformed');
  });
  it('refuses invalid UTF-8 in the header', () => {
    const bad = Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url');
    expect(codeOf(() => decodeSegments(`${bad}.e30.AA`))).toBe('token_malformed');
  });
  it('accepts typ case-insensitively (RFC 7515 §4.1.9) but only JWT', () => {
    expect(checkHeader({ alg: 'ES256', typ: 'jwt' }).typ).toBe('jwt');
    expect(codeOf(() => checkHeader({ alg: 'ES256', typ: 'JOSE' }))).toBe('header_invalid');
    expect(codeOf(() => checkHeader({ alg: 'ES256', x5t: 'abc' }))).toBe('header_forbidden');
  });
});
