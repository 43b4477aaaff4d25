/**
 * The tokens Google's samples mint — PyJWT (Python sample) and jsonwebtoken (Node sample), RS256 and
 * ES256 — pass the protocol core's Cloud IoT Core rules, and are refused where they should be.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GCP_TOKEN_RULES, GCP_DIALECT, gcpTokenRules, verifyToken, type VerifiableCredential } from '@latchkey/device-sdk/protocol';
import { missingPythonStack, tokenOf, type FirmwareStack } from './helpers/firmware.ts';
import { protocolCodeOf } from '../helpers/protocol-code.ts';

const python = missingPythonStack();
if (python !== null && process.env.CI !== 'true') console.warn(`skipped, ${python} not installed`);

const keys = {
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
} as const;
const pem = (alg: keyof typeof keys) => keys[alg].privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

function verify(token: string, creds: VerifiableCredential[], project = 'acme-iot') {
  return verifyToken(token, { ...gcpTokenRules(project, DEFAULT_GCP_TOKEN_RULES), dialect: GCP_DIALECT, now: Date.now(), principal: 'thermo-1', resolveCredentials: () => creds });
}
const codeOf = protocolCodeOf;

describe.each<[FirmwareStack, boolean]>([
  ['paho+pyjwt', python !== null],
  ['mqtt+jsonwebtoken', false],
])('tokens minted by %s', (stack, skip) => {
  it.skipIf(skip && process.env.CI !== 'true').each(['RS256', 'ES256'] as const)('%s: accepted with its own key type, alg_key_mismatch with the other', async (alg) => {
    if (skip) expect(python, 'CI=true: the Python stack must be installed').toBeNull();
    const token = await tokenOf(stack, { project: 'acme-iot', privateKeyPem: pem(alg), algorithm: alg });
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    expect(header).toEqual({ alg, typ: 'JWT' });
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(Object.keys(payload).sort()).toEqual(['aud', 'exp', 'iat']);
    const own = { kid: 'k', key: keys[alg].publicKey, expiresAt: null };
    const other = { kid: 'o', key: keys[alg === 'RS256' ? 'ES256' : 'RS256'].publicKey, expiresAt: null };
    expect(verify(token, [own])).toMatchObject({ alg, kid: 'k', aud: 'acme-iot' });
    expect(verify(token, [other, own]).kid).toBe('k');
    expect(codeOf(() => verify(token, [other]))).toBe('alg_key_mismatch');
    expect(codeOf(() => verify(token, [own], 'other-project'))).toBe('audience_mismatch');
  });

  it.skipIf(skip && process.env.CI !== 'true')('a 25 h token is lifetime_exceeded', async () => {
    const token = await tokenOf(stack, { project: 'acme-iot', privateKeyPem: pem('RS256'), algorithm: 'RS256', jwtLifetimeS: 25 * 3600 });
    expect(codeOf(() => verify(token, [{ kid: 'k', key: keys.RS256.publicKey, expiresAt: null }]))).toBe('lifetime_exceeded');
  });
});
