import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TOKEN_RULES,
  MESSAGE_TYP,
  ProtocolError,
  checkCredentialAt,
  deviceOfPublishTopic,
  messageAudience,
  verifySignedMessage,
  verifyToken,
  type MessageCredential,
} from '@latchkey/device-sdk/protocol';
import { mintConnectToken, mintEnrollProof, signDeviceMessage } from '@latchkey/device-sdk';
import { signCompact, signerOf } from '../../device-sdk/src/token/jws-signing.ts';

/** protocol.md §Signed messages, rule by rule, against the protocol core's synchronous verifier (the broker's). */

const NOW = 1_800_000_000_000;
const S = NOW / 1000;
const clock = () => NOW;
const pair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const A = pair();
const B = pair();
const TOPIC = 'devices/thermo-1/telemetry';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return e instanceof ProtocolError ? e.code : `foreign:${String(e)}`;
  }
  return 'ok';
};

const credsOf = (extra: Partial<MessageCredential> = {}): MessageCredential[] => [{ kid: 'k-a', key: A.publicKey, expiresAt: null, ...extra }];

function verify(message: string, o: { topic?: string; creds?: MessageCredential[] | null; now?: number; preferKid?: string; maxBytes?: number } = {}) {
  return verifySignedMessage(message, {
    topic: o.topic ?? TOPIC,
    audience: 'latchkey',
    clockTolerance: 300,
    now: o.now ?? NOW,
    resolveCredentials: () => (o.creds === undefined ? credsOf() : o.creds),
    ...(o.preferKid === undefined ? {} : { preferKid: o.preferKid }),
    ...(o.maxBytes === undefined ? {} : { maxBytes: o.maxBytes }),
  });
}

const sign = (o: { topic?: string; payload?: unknown; seq?: number; key?: KeyObject; kid?: string; deviceId?: string } = {}) =>
  signDeviceMessage({
    deviceId: o.deviceId ?? 'thermo-1',
    topic: o.topic ?? TOPIC,
    payload: o.payload ?? { celsius: 21.5 },
    seq: o.seq ?? 7,
    privateKey: o.key ?? A.privateKey,
    clock,
    ...(o.kid === undefined ? {} : { kid: o.kid }),
  });

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const goodClaims = () => ({ sub: 'thermo-1', aud: 'latchkey:message', iat: S, topic: TOPIC, seq: 7, body: b64({ celsius: 21.5 }) });
/** A JWS with any header and claims, signed by `key` (A's by default). */
const handmade = (header: object, claims: object, key: KeyObject = A.privateKey) => signCompact(header, claims, signerOf(key, undefined));
/** The code verifying a handmade JWS ends with. */
const handmadeCode = async (header: object, claims: object, o: Parameters<typeof verify>[1] & { key?: KeyObject } = {}) => {
  const jws = await handmade(header, claims, o.key);
  return codeOf(() => verify(jws, o));
};
const HEADER = { alg: 'ES256', typ: MESSAGE_TYP };

describe('protocol.md §Signed messages: format', () => {
  it('is a compact JWS: header {alg, typ, kid?}; claims {sub, aud, iat, topic, seq, body}; body the base64url of the bytes', async () => {
    const jws = await sign({ kid: 'k-a' });
    const [h, p, s] = jws.split('.') as [string, string, string];
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toEqual({ alg: 'ES256', typ: 'latchkey-message+jwt', kid: 'k-a' });
    expect(JSON.parse(Buffer.from(p, 'base64url').toString())).toEqual(goodClaims());
    expect(Buffer.from(s, 'base64url')).toHaveLength(64);
    const m = verify(jws);
    expect(m).toEqual({ deviceId: 'thermo-1', topic: TOPIC, seq: 7, iat: S, kid: 'k-a', payload: Buffer.from('{"celsius":21.5}') });
  });

  it('carries any bytes exactly', async () => {
    const bytes = Buffer.from([0, 255, 1, 254, 0x2e, 0x7b]);
    expect(verify(await sign({ payload: bytes })).payload).toEqual(bytes);
    expect(verify(await sign({ payload: '' })).payload).toEqual(Buffer.alloc(0));
  });

  it('binds the topic to a device → cloud topic of the device', () => {
    expect(deviceOfPublishTopic('devices/thermo-1/telemetry/a/b')).toBe('thermo-1');
    expect(deviceOfPublishTopic('devices/thermo-1/state')).toBe('thermo-1');
    expect(deviceOfPublishTopic('devices/thermo-1/replies/c1')).toBe('thermo-1');
    for (const t of ['devices/thermo-1/commands/x', 'devices/thermo-1/config', 'devices/thermo-1/state/x', 'devices/thermo-1/telemetry//x', 'devices/t/telemetry', 'other/thermo-1/telemetry', 'devices/thermo-1']) {
      expect(deviceOfPublishTopic(t), t).toBeNull();
    }
  });

  it('the SDK refuses to sign what no verifier accepts (caller misuse is a TypeError)', async () => {
    await expect(sign({ topic: 'devices/other-1/telemetry' })).rejects.toThrow(TypeError);
    await expect(sign({ topic: 'devices/thermo-1/commands/x' })).rejects.toThrow(TypeError);
    await expect(sign({ seq: -1 })).rejects.toThrow(TypeError);
    await expect(sign({ seq: 2 ** 53 })).rejects.toThrow(TypeError);
    await expect(sign({ seq: 1.5 })).rejects.toThrow(TypeError);
    await expect(sign({ kid: '' })).rejects.toThrow(TypeError);
  });
});

describe('protocol.md §Signed messages: what the verifier refuses', () => {
  it('a changed body, claim or signature: signature_invalid', async () => {
    const jws = await sign();
    const [h, , s] = jws.split('.') as [string, string, string];
    const changed = `${h}.${b64({ ...goodClaims(), body: b64({ celsius: 99 }) })}.${s}`;
    expect(codeOf(() => verify(changed))).toBe('signature_invalid');
    const otherSeq = `${h}.${b64({ ...goodClaims(), seq: 8 })}.${s}`;
    expect(codeOf(() => verify(otherSeq))).toBe('signature_invalid');
    const flipped = jws.slice(0, -2) + (jws.at(-2) === 'A' ? 'B' : 'A') + jws.at(-1);
    expect(codeOf(() => verify(flipped))).toBe('signature_invalid');
  });

  it('a topic swap: to another of the device’s topics topic_mismatch; to another device’s topic its keys do not verify', async () => {
    const jws = await sign();
    expect(codeOf(() => verify(jws, { topic: 'devices/thermo-1/state' }))).toBe('topic_mismatch');
    expect(codeOf(() => verify(jws, { topic: 'devices/thermo-1/telemetry/x' }))).toBe('topic_mismatch');
    expect(codeOf(() => verify(jws, { topic: 'devices/thermo-2/telemetry', creds: [{ kid: 'k-b', key: B.publicKey, expiresAt: null }] }))).toBe('signature_invalid');
    expect(codeOf(() => verify(jws, { topic: 'devices/thermo-1/commands/x' }))).toBe('topic_mismatch');
  });

  it('another device’s key: signature_invalid, or unknown_credential when its kid is named', async () => {
    expect(await handmadeCode(HEADER, goodClaims(), { key: B.privateKey })).toBe('signature_invalid');
    expect(await handmadeCode({ ...HEADER, kid: 'k-b' }, goodClaims(), { key: B.privateKey })).toBe('unknown_credential');
  });

  it('a sub other than the topic’s device: subject_mismatch (even signed by the right key)', async () => {
    expect(await handmadeCode(HEADER, { ...goodClaims(), sub: 'thermo-2' })).toBe('subject_mismatch');
  });

  it('a connect token, an enrollment proof, a JWT without typ: header_invalid — and a message is never a connect token', async () => {
    const { token } = await mintConnectToken({ subject: 'thermo-1', privateKey: A.privateKey, clock });
    expect(codeOf(() => verify(token))).toBe('header_invalid');
    const proof = await mintEnrollProof({ deviceId: 'thermo-1', privateKey: A.privateKey, clock });
    expect(codeOf(() => verify(proof))).toBe('header_invalid');
    expect(await handmadeCode({ alg: 'ES256' }, goodClaims())).toBe('header_invalid');
    expect(await handmadeCode({ alg: 'ES256', typ: 'JWT' }, goodClaims())).toBe('header_invalid');
    const message = await sign();
    const asToken = () =>
      verifyToken(message, { ...DEFAULT_TOKEN_RULES, now: NOW, principal: 'thermo-1', resolveCredentials: () => [{ kid: 'k-a', key: A.publicKey, expiresAt: null }] });
    expect(codeOf(asToken)).toBe('header_invalid');
    // even with typ JWT, a message's claims are no token's: no exp, and aud <audience>:message
    const typedAsToken = await handmade({ alg: 'ES256', typ: 'JWT' }, goodClaims());
    expect(codeOf(() => verifyToken(typedAsToken, { ...DEFAULT_TOKEN_RULES, now: NOW, principal: 'thermo-1', resolveCredentials: () => [{ kid: 'k-a', key: A.publicKey, expiresAt: null }] }))).toBe('claim_missing');
  });

  it('typ is compared ignoring ASCII case only', async () => {
    expect(await handmadeCode({ alg: 'ES256', typ: 'LATCHKEY-Message+JWT' }, goodClaims())).toBe('ok');
    expect(await handmadeCode({ alg: 'ES256', typ: 'latch\u212Aey-message+jwt' }, goodClaims())).toBe('header_invalid'); // Kelvin sign
    expect(await handmadeCode({ alg: 'ES256', typ: 'latchkey-me\u017F\u017Fage+jwt' }, goodClaims())).toBe('header_invalid'); // long s
  });

  it.each([
    [{ alg: 'none', typ: MESSAGE_TYP }, 'alg_not_allowed'],
    [{ alg: 'HS256', typ: MESSAGE_TYP }, 'alg_not_allowed'],
    // connect tokens of Cloud IoT Core devices may be RS256 (checkJoseHeader's algorithms); a signed message never
    [{ alg: 'RS256', typ: MESSAGE_TYP }, 'alg_not_allowed'],
    [{ ...HEADER, jwk: {} }, 'header_forbidden'],
    [{ ...HEADER, crit: ['b64'] }, 'header_forbidden'],
    [{ ...HEADER, cty: 'json' }, 'header_forbidden'],
    [{ ...HEADER, kid: '' }, 'header_invalid'],
    [{ ...HEADER, typ: 7 }, 'header_invalid'],
  ])('header %j: %s', async (header, code) => {
    expect(await handmadeCode(header, goodClaims())).toBe(code);
  });

  it.each([
    [{ sub: undefined }, 'claim_missing'],
    [{ aud: undefined }, 'claim_missing'],
    [{ iat: undefined }, 'claim_missing'],
    [{ topic: undefined }, 'claim_missing'],
    [{ seq: undefined }, 'claim_missing'],
    [{ body: undefined }, 'claim_missing'],
    [{ iat: 1.5 }, 'claim_invalid'],
    [{ iat: '1800000000' }, 'claim_invalid'],
    [{ seq: -1 }, 'claim_invalid'],
    [{ seq: 2 ** 53 }, 'claim_invalid'],
    [{ seq: '7' }, 'claim_invalid'],
    [{ aud: ['latchkey:message'] }, 'claim_invalid'],
    [{ body: 'e30=' }, 'claim_invalid'],
    [{ body: 'e31' }, 'claim_invalid'],
    [{ aud: 'latchkey' }, 'audience_mismatch'],
    [{ aud: 'other:message' }, 'audience_mismatch'],
    [{ topic: 'devices/thermo-1/state' }, 'topic_mismatch'],
    [{ iat: S + 301 }, 'message_issued_in_future'],
    [{ iat: S + 300 }, 'ok'],
    [{ iat: 0 }, 'ok'],
    [{ extra: { anything: true } }, 'ok'],
  ])('claims with %j: %s', async (change, code) => {
    expect(await handmadeCode(HEADER, { ...goodClaims(), ...change })).toBe(code);
  });

  it('reads the JWS strictly: message_malformed, message_too_large', async () => {
    const jws = await sign();
    const [h, p, s] = jws.split('.') as [string, string, string];
    const dupClaims = Buffer.from(`{"sub":"thermo-1","sub":"thermo-2","aud":"latchkey:message","iat":${S},"topic":"${TOPIC}","seq":7,"body":"e30"}`).toString('base64url');
    for (const bad of ['', 'a.b', `${jws}.x`, `${h}=.${p}.${s}`, `${h}.${p}.${s} `, `.${p}.${s}`, '{"celsius":21.5}']) {
      expect(codeOf(() => verify(bad)), bad.slice(0, 40)).toBe('message_malformed');
    }
    // the claims are read only after the signature verified: a duplicate name refused then
    expect(codeOf(() => verify(`${h}.${dupClaims}.${s}`))).toBe('signature_invalid');
    const dupInput = `${b64(HEADER)}.${dupClaims}`;
    const dupSig = cryptoSign('sha256', Buffer.from(dupInput), { key: A.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    expect(codeOf(() => verify(`${dupInput}.${dupSig}`))).toBe('message_malformed');
    expect(codeOf(() => verify(jws, { maxBytes: jws.length - 1 }))).toBe('message_too_large');
    expect(codeOf(() => verify(jws, { maxBytes: jws.length }))).toBe('ok');
  });

  it('a DER signature, or any other length, fails', async () => {
    const jws = await sign();
    const input = jws.slice(0, jws.lastIndexOf('.'));
    const der = cryptoSign('sha256', Buffer.from(input), A.privateKey);
    expect(codeOf(() => verify(`${input}.${der.toString('base64url')}`))).toBe('signature_invalid');
  });

  it('keys: unknown device unknown_principal; kid never had unknown_credential; no credentials unknown_credential', async () => {
    const jws = await sign();
    expect(codeOf(() => verify(jws, { creds: null }))).toBe('unknown_principal');
    expect(codeOf(() => verify(jws, { creds: [] }))).toBe('unknown_credential');
    const namedOther = await sign({ kid: 'k-x' });
    expect(codeOf(() => verify(namedOther))).toBe('unknown_credential');
  });

  it('without a kid, the preferred key is tried first (the broker: one verify per message)', async () => {
    const creds: MessageCredential[] = [
      { kid: 'k-b', key: B.publicKey, expiresAt: null },
      { kid: 'k-a', key: A.publicKey, expiresAt: null },
    ];
    expect(verify(await sign(), { creds, preferKid: 'k-a' }).kid).toBe('k-a');
    expect(verify(await sign(), { creds }).kid).toBe('k-a');
  });
});

describe('protocol.md §Signed messages: a key is valid for messages dated while it was registered', () => {
  // the second named by iat, [iat, iat + 1), must overlap [createdAt, removedAt) and start before expiresAt
  const at = (iat: number, c: Partial<MessageCredential>) => codeOf(() => checkCredentialAt({ kid: 'k', key: A.publicKey, expiresAt: null, ...c }, iat));
  it.each([
    [{ createdAt: S * 1000 + 999 }, 'ok'],
    [{ createdAt: S * 1000 + 1000 }, 'credential_not_yet_valid'],
    [{ removedAt: S * 1000 + 1 }, 'ok'],
    [{ removedAt: S * 1000 }, 'credential_removed'],
    [{ removedAt: S * 1000 - 1 }, 'credential_removed'],
    [{ expiresAt: S * 1000 + 1 }, 'ok'],
    [{ expiresAt: S * 1000 }, 'credential_expired'],
    [{ createdAt: null, removedAt: null, expiresAt: null }, 'ok'],
  ])('%j at iat = S: %s', (c, code) => {
    expect(at(S, c)).toBe(code);
  });

  it('the verifier applies it to the key that verified', async () => {
    expect(await handmadeCode(HEADER, goodClaims(), { creds: credsOf({ removedAt: NOW - 60_000 }) })).toBe('credential_removed');
    expect(await handmadeCode(HEADER, { ...goodClaims(), iat: S - 120 }, { creds: credsOf({ removedAt: NOW - 60_000 }) })).toBe('ok');
  });

  it('the message audience is the broker audience with :message', () => {
    expect(messageAudience('latchkey')).toBe('latchkey:message');
  });
});
