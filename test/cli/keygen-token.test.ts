import { createPublicKey } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalSpkiDer, DEFAULT_TOKEN_RULES, fingerprintOf, MAX_KID_LENGTH, verifyToken } from '@latchkey/device-sdk/protocol';
import { errorLine, runLatchkey, tempDir } from './cli-process.ts';

const tmp = tempDir('keygen');
afterAll(tmp.cleanup);

describe('latchkey keygen (docs/configuration.md)', () => {
  it('writes device.key.pem (PKCS#8, 0600) and device.pub.pem (SPKI), creating the directory', async () => {
    const r = await runLatchkey(['keygen', '--out', 'dev-a/keys'], { cwd: tmp.dir });
    expect(r.code).toBe(0);
    const dir = path.join(tmp.dir, 'dev-a/keys');
    const keyPem = readFileSync(path.join(dir, 'device.key.pem'), 'utf8');
    const pubPem = readFileSync(path.join(dir, 'device.pub.pem'), 'utf8');
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(pubPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(statSync(path.join(dir, 'device.key.pem')).mode & 0o777).toBe(0o600);
    const pub = createPublicKey(pubPem);
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // the two files are one pair
    expect(createPublicKey(keyPem).export({ type: 'spki', format: 'pem' })).toBe(pubPem);
    // it prints the fingerprint of the public key, and never the private key
    expect(r.stdout).toContain(fingerprintOf(canonicalSpkiDer(pub)));
    expect(r.stdout + r.stderr).not.toContain('PRIVATE KEY-----');
  });

  it('refuses to overwrite either key file and leaves them untouched', async () => {
    const before = readFileSync(path.join(tmp.dir, 'dev-a/keys/device.key.pem'));
    const r = await runLatchkey(['keygen', '--out', 'dev-a/keys'], { cwd: tmp.dir });
    expect(r.code).not.toBe(0);
    expect(errorLine(r.stderr)?.code).toBe('key_exists');
    expect(readFileSync(path.join(tmp.dir, 'dev-a/keys/device.key.pem'))).toEqual(before);

    writeFileSync(path.join(tmp.dir, 'device.pub.pem'), 'mine');
    const pubOnly = await runLatchkey(['keygen', '--out', '.'], { cwd: tmp.dir });
    expect(errorLine(pubOnly.stderr)?.code).toBe('key_exists');
    expect(readFileSync(path.join(tmp.dir, 'device.pub.pem'), 'utf8')).toBe('mine');
  });

  it('needs --out', async () => {
    const r = await runLatchkey(['keygen'], { cwd: tmp.dir });
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toMatchObject({ code: 'usage' });
    expect(errorLine(r.stderr)?.detail).toContain('--out');
  });
});

describe('latchkey token (docs/configuration.md)', () => {
  let keyFile: string;
  let pubPem: string;
  beforeAll(async () => {
    await runLatchkey(['keygen', '--out', 'dev-b'], { cwd: tmp.dir });
    keyFile = path.join(tmp.dir, 'dev-b/device.key.pem');
    pubPem = readFileSync(path.join(tmp.dir, 'dev-b/device.pub.pem'), 'utf8');
  });

  it('prints only the token, which verifies against the public key under the protocol rules', async () => {
    const r = await runLatchkey(['token', '--device', 'thermo-7', '--key', keyFile]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const token = r.stdout.trim();
    const pub = createPublicKey(pubPem);
    const verified = verifyToken(token, {
      principal: 'thermo-7',
      now: Date.now(),
      audience: 'latchkey',
      maxTokenLifetime: 86_400,
      clockTolerance: 300,
      requireJti: false,
      resolveCredentials: (p) => (p === 'thermo-7' ? [{ kid: 'k1', key: pub, expiresAt: null }] : null),
    });
    expect(verified).toMatchObject({ sub: 'thermo-7', kid: 'k1' });
    const { payload, protectedHeader } = await jwtVerify(token, pub, { audience: 'latchkey', subject: 'thermo-7' });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(payload.exp! - payload.iat!).toBe(3600);
  });

  it('honours --audience, --ttl, --kid and --jti', async () => {
    const r = await runLatchkey(['token', '--device', 'thermo-7', '--key', keyFile, '--audience', 'fleet-b', '--ttl', '120', '--kid', 'k-9', '--jti']);
    expect(r.code).toBe(0);
    const { payload, protectedHeader } = await jwtVerify(r.stdout.trim(), createPublicKey(pubPem), { audience: 'fleet-b' });
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(protectedHeader.kid).toBe('k-9');
    expect(typeof payload.jti).toBe('string');
  });

  it('--kid: prints a token at the longest kid the verifier accepts, and refuses a longer one (it would never connect)', async () => {
    // regression: --kid allowed 256 characters while the verifier refuses more than 128 as header_invalid
    const longest = 'k'.repeat(MAX_KID_LENGTH);
    const r = await runLatchkey(['token', '--device', 'thermo-7', '--key', keyFile, '--kid', longest]);
    expect(r.code).toBe(0);
    const verified = verifyToken(r.stdout.trim(), {
      ...DEFAULT_TOKEN_RULES,
      principal: 'thermo-7',
      now: Date.now(),
      resolveCredentials: () => [{ kid: longest, key: createPublicKey(pubPem), expiresAt: null }],
    });
    expect(verified.kid).toBe(longest);
    const tooLong = await runLatchkey(['token', '--device', 'thermo-7', '--key', keyFile, '--kid', `${longest}k`]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stdout).toBe('');
    expect(errorLine(tooLong.stderr)).toMatchObject({ code: 'usage' });
    expect(errorLine(tooLong.stderr)?.detail).toContain('--kid');
  });

  it.each([
    [['token', '--key', 'x.pem'], 'usage'],
    [['token', '--device', 'thermo-7'], 'usage'],
    [['token', '--device', 'bad/id', '--key', 'x.pem'], 'usage'],
    [['token', '--device', 'thermo-7', '--key', 'x.pem', '--ttl', '86401'], 'usage'],
    [['token', '--device', 'thermo-7', '--key', 'x.pem', '--ttl', '1.5'], 'usage'],
    [['token', '--device', 'thermo-7', '--key', 'missing.pem'], 'file_unreadable'],
  ])('%j fails with %s', async (args, code) => {
    const r = await runLatchkey(args, { cwd: tmp.dir });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(errorLine(r.stderr)?.code).toBe(code);
  });

  it('refuses a public key or a non-P-256 key without printing key material', async () => {
    const pubFile = path.join(tmp.dir, 'dev-b/device.pub.pem');
    const r = await runLatchkey(['token', '--device', 'thermo-7', '--key', pubFile]);
    expect(errorLine(r.stderr)?.code).toBe('invalid_private_key');
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const rsaFile = path.join(tmp.dir, 'rsa.pem');
    writeFileSync(rsaFile, rsa, { mode: 0o600 });
    const r2 = await runLatchkey(['token', '--device', 'thermo-7', '--key', rsaFile]);
    expect(errorLine(r2.stderr)?.code).toBe('unsupported_private_key');
    const body = rsa.split('\n')[1]!;
    expect(r2.stderr).not.toContain(body);
    expect(r2.stdout).toBe('');
  });
});
