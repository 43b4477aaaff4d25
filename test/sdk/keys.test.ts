import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DeviceKeyError,
  generateDeviceKeyPair,
  loadPrivateKey,
  loadPrivateKeyPem,
  privateKeyToPem,
  publicKeyToPem,
  saveKeyPair,
} from '../../device-sdk/src/keys/keys.ts';
import { parsePublicKey } from '../../device-sdk/src/protocol/public-key.ts';
import { OPENSSL } from '../helpers/certs.ts';
import { execFileSync } from 'node:child_process';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'latchkey-keys-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const modeOf = (p: string): number => statSync(p).mode & 0o777;

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (e) {
    if (e instanceof DeviceKeyError) return e.code;
    if (e instanceof TypeError) return 'TypeError';
    throw e;
  }
}

describe('generateDeviceKeyPair and PEM export', () => {
  it('makes a P-256 pair whose public PEM the registry accepts', () => {
    const pair = generateDeviceKeyPair();
    expect(pair.privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(pair.publicKey.type).toBe('public');
    const pub = publicKeyToPem(pair.publicKey);
    expect(pub).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(parsePublicKey(pub).key.equals(pair.publicKey)).toBe(true);
    expect(publicKeyToPem(pair.privateKey)).toBe(pub);
    expect(privateKeyToPem(pair.privateKey)).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('two pairs differ', () => {
    expect(publicKeyToPem(generateDeviceKeyPair().publicKey)).not.toBe(publicKeyToPem(generateDeviceKeyPair().publicKey));
  });

  it('refuses other keys with TypeError', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(() => privateKeyToPem(rsa.privateKey)).toThrow(TypeError);
    expect(() => privateKeyToPem(generateDeviceKeyPair().publicKey)).toThrow(TypeError);
    expect(() => publicKeyToPem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey)).toThrow(TypeError);
  });
});

describe('saveKeyPair', () => {
  it('writes device.key.pem 0600 and device.pub.pem 0644 into a new 0700 directory', async () => {
    const dir = path.join(tmp, 'nested', 'keys');
    const pair = generateDeviceKeyPair();
    const { privateKeyPath, publicKeyPath } = await saveKeyPair(dir, pair);
    expect(privateKeyPath).toBe(path.join(dir, 'device.key.pem'));
    expect(publicKeyPath).toBe(path.join(dir, 'device.pub.pem'));
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(privateKeyPath)).toBe(0o600);
    expect(modeOf(publicKeyPath)).toBe(0o644);
    expect(readFileSync(privateKeyPath, 'utf8')).toBe(privateKeyToPem(pair.privateKey));
    expect(readFileSync(publicKeyPath, 'utf8')).toBe(publicKeyToPem(pair.publicKey));
  });

  it('creates the private key 0600 from the start, even under a permissive umask', async () => {
    const previous = process.umask(0);
    try {
      const { privateKeyPath } = await saveKeyPair(tmp, generateDeviceKeyPair());
      expect(modeOf(privateKeyPath)).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('refuses to overwrite an existing key (key_exists) and leaves it untouched', async () => {
    const first = generateDeviceKeyPair();
    const { privateKeyPath, publicKeyPath } = await saveKeyPair(tmp, first);
    expect(await codeOf(saveKeyPair(tmp, generateDeviceKeyPair()))).toBe('key_exists');
    expect(loadPrivateKeyPem(readFileSync(privateKeyPath, 'utf8')).equals(first.privateKey)).toBe(true);
    expect(readFileSync(publicKeyPath, 'utf8')).toBe(publicKeyToPem(first.publicKey));
  });

  it('replaces the pair with overwrite: true, and the new private key file is 0600', async () => {
    const privateKeyPath = path.join(tmp, 'device.key.pem');
    writeFileSync(privateKeyPath, 'old', { mode: 0o644 });
    const second = generateDeviceKeyPair();
    await saveKeyPair(tmp, second, { overwrite: true });
    expect(modeOf(privateKeyPath)).toBe(0o600);
    expect((await loadPrivateKey(privateKeyPath)).equals(second.privateKey)).toBe(true);
  });

  it('refuses mismatched or non-P-256 pairs with TypeError before writing', async () => {
    const mixed = { privateKey: generateDeviceKeyPair().privateKey, publicKey: generateDeviceKeyPair().publicKey };
    expect(await codeOf(saveKeyPair(tmp, mixed))).toBe('TypeError');
    expect(await codeOf(saveKeyPair(tmp, generateKeyPairSync('ed25519')))).toBe('TypeError');
    expect(await codeOf(saveKeyPair('', generateDeviceKeyPair()))).toBe('TypeError');
    expect(() => statSync(path.join(tmp, 'device.key.pem'))).toThrow();
  });
});

describe('loadPrivateKey', () => {
  it('round-trips a saved key', async () => {
    const pair = generateDeviceKeyPair();
    const { privateKeyPath } = await saveKeyPair(tmp, pair);
    const loaded = await loadPrivateKey(privateKeyPath);
    expect(loaded.type).toBe('private');
    expect(loaded.equals(pair.privateKey)).toBe(true);
  });

  it('reads SEC 1 EC PRIVATE KEY, including openssl ecparam -genkey output with its EC PARAMETERS block', () => {
    const pair = generateDeviceKeyPair();
    const sec1 = pair.privateKey.export({ type: 'sec1', format: 'pem' }) as string;
    expect(loadPrivateKeyPem(sec1).equals(pair.privateKey)).toBe(true);
    const file = path.join(tmp, 'ecparam.pem');
    execFileSync(OPENSSL, ['ecparam', '-name', 'prime256v1', '-genkey', '-out', file]);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('BEGIN EC PARAMETERS');
    expect(loadPrivateKeyPem(text).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it.each([
    ['an RSA key (PKCS#8)', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }), 'unsupported_private_key'],
    ['an RSA key (PKCS#1)', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }), 'unsupported_private_key'],
    ['an Ed25519 key', () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), 'unsupported_private_key'],
    ['a P-384 key', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), 'unsupported_private_key'],
    ['a public key', () => publicKeyToPem(generateDeviceKeyPair().publicKey), 'invalid_private_key'],
    ['an encrypted key', () => generateDeviceKeyPair().privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }), 'invalid_private_key'],
    ['garbage', () => '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'invalid_private_key'],
  ])('refuses %s', async (_name, make, code) => {
    const file = path.join(tmp, 'key.pem');
    writeFileSync(file, make() as string, { mode: 0o600 });
    expect(await codeOf(loadPrivateKey(file))).toBe(code);
  });

  it('passes file-system errors through and refuses misuse with TypeError', async () => {
    await expect(loadPrivateKey(path.join(tmp, 'missing.pem'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await codeOf(loadPrivateKey(''))).toBe('TypeError');
    expect(await codeOf(() => loadPrivateKeyPem(42 as unknown as string))).toBe('TypeError');
  });
});
