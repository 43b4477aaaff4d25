import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CodedError } from '../protocol/coded-error.ts';

/** A device's P-256 key pair (protocol.md §Keys). Only the public key leaves the device. */
export interface DeviceKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export type DeviceKeyErrorCode =
  | 'key_exists' // saveKeyPair found a key and was not told to overwrite it
  | 'invalid_private_key' // not a readable, unencrypted PKCS#8 or SEC 1 private key PEM
  | 'unsupported_private_key'; // a private key, but not EC P-256

/**
 * A key file could not be saved or loaded. `message` never contains key material.
 *
 * @example
 * ```ts
 * try { await saveKeyPair(dir, pair) } catch (e) { if (e instanceof DeviceKeyError && e.code === 'key_exists') ... }
 * ```
 */
export class DeviceKeyError extends CodedError<DeviceKeyErrorCode> {
  override readonly name = 'DeviceKeyError';
}

/** File names inside a key directory. */
export const PRIVATE_KEY_FILE = 'device.key.pem';
export const PUBLIC_KEY_FILE = 'device.pub.pem';

function isP256(k: unknown, type: 'public' | 'private' | 'any'): k is KeyObject {
  if (k === null || typeof k !== 'object') return false;
  const key = k as KeyObject;
  return (
    (type === 'any' ? key.type === 'public' || key.type === 'private' : key.type === type) &&
    key.asymmetricKeyType === 'ec' &&
    key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  );
}

/**
 * Generates a fresh EC P-256 key pair (protocol.md §Keys).
 *
 * @example
 * ```ts
 * const pair = generateDeviceKeyPair();
 * await register(deviceId, publicKeyToPem(pair.publicKey));
 * ```
 */
export function generateDeviceKeyPair(): DeviceKeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/**
 * The private key as an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
 * Throws TypeError unless `k` is a private P-256 key.
 *
 * @example
 * ```ts
 * const pem = privateKeyToPem(generateDeviceKeyPair().privateKey);
 * ```
 */
export function privateKeyToPem(k: KeyObject): string {
  if (!isP256(k, 'private')) throw new TypeError('privateKeyToPem expects a private EC P-256 KeyObject');
  return k.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/**
 * The public key as an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the format to register.
 * Given a private key, returns the PEM of its public half. Throws TypeError for non-P-256 keys.
 *
 * @example
 * ```ts
 * const pem = publicKeyToPem(pair.publicKey);
 * ```
 */
export function publicKeyToPem(k: KeyObject): string {
  if (!isP256(k, 'any')) throw new TypeError('publicKeyToPem expects an EC P-256 KeyObject');
  const pub = k.type === 'private' ? createPublicKey(k) : k;
  return pub.export({ type: 'spki', format: 'pem' }) as string;
}

/**
 * Writes `device.key.pem` (PKCS#8, created with mode 0600, never chmod-ed after the fact) and
 * `device.pub.pem` (SPKI, 0644) into `dir`, creating `dir` with mode 0700 when missing.
 * Refuses to replace an existing private key (DeviceKeyError `key_exists`) unless
 * `overwrite: true`; with overwrite, each file is replaced atomically (temp file + rename).
 *
 * @example
 * ```ts
 * const { privateKeyPath } = await saveKeyPair('/var/lib/thermostat', generateDeviceKeyPair());
 * ```
 */
export async function saveKeyPair(
  dir: string,
  pair: DeviceKeyPair,
  opts?: { overwrite?: boolean },
): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('saveKeyPair: dir must be a non-empty path');
  if (pair === null || typeof pair !== 'object') throw new TypeError('saveKeyPair: pair must be a DeviceKeyPair');
  const privatePem = privateKeyToPem(pair.privateKey);
  const publicPem = publicKeyToPem(pair.publicKey);
  if (publicPem !== publicKeyToPem(pair.privateKey)) throw new TypeError('saveKeyPair: the keys are not one pair');
  const overwrite = opts?.overwrite === true;

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const privateKeyPath = path.join(dir, PRIVATE_KEY_FILE);
  const publicKeyPath = path.join(dir, PUBLIC_KEY_FILE);
  if (overwrite) {
    await writeAtomically(privateKeyPath, privatePem, 0o600);
  } else {
    await writeNew(privateKeyPath, privatePem, 0o600);
  }
  // The public key is not a secret; it always follows the private key it belongs to.
  await writeAtomically(publicKeyPath, publicPem, 0o644);
  return { privateKeyPath, publicKeyPath };
}

/** Creates `file` with `mode` from the first byte (O_EXCL: fails when it exists). */
async function writeNew(file: string, content: string, mode: number): Promise<void> {
  let handle;
  try {
    handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new DeviceKeyError('key_exists', `a private key already exists at ${file}; pass overwrite: true to replace it`, { cause: e });
    }
    throw e;
  }
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (e) {
    await handle.close();
    await rm(file, { force: true });
    throw e;
  }
  await handle.close();
}

/** Writes a temp file created with `mode`, then renames it over `file`. */
async function writeAtomically(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeNew(tmp, content, mode);
    // A umask can only narrow the mode; the public key should stay world-readable.
    if (mode === 0o644) await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Reads a P-256 private key PEM file (PKCS#8 or SEC 1 `EC PRIVATE KEY`).
 * Throws DeviceKeyError `invalid_private_key` or `unsupported_private_key`; file-system errors
 * (ENOENT, EACCES) are passed through.
 *
 * @example
 * ```ts
 * const privateKey = await loadPrivateKey('/var/lib/thermostat/device.key.pem');
 * ```
 */
export async function loadPrivateKey(file: string): Promise<KeyObject> {
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('loadPrivateKey: path must be a non-empty string');
  return loadPrivateKeyPem(await readFile(file, 'utf8'));
}

/**
 * Parses a P-256 private key PEM (PKCS#8 `PRIVATE KEY` or SEC 1 `EC PRIVATE KEY`, unencrypted).
 * Throws TypeError for a non-string, DeviceKeyError `invalid_private_key` for anything unreadable
 * (including encrypted PKCS#8), `unsupported_private_key` for RSA, Ed25519 and other curves.
 *
 * @example
 * ```ts
 * const privateKey = loadPrivateKeyPem(process.env.DEVICE_KEY_PEM!);
 * ```
 */
export function loadPrivateKeyPem(pem: string): KeyObject {
  if (typeof pem !== 'string') throw new TypeError('loadPrivateKeyPem expects a PEM string');
  // `openssl ecparam -genkey` writes an `EC PARAMETERS` block first: look for the key block.
  const label = /-----BEGIN ([A-Z0-9 ]{0,40}PRIVATE KEY)-----/.exec(pem)?.[1];
  if (label === undefined) throw new DeviceKeyError('invalid_private_key', 'expected a PKCS#8 or SEC 1 private key PEM');
  if (label === 'ENCRYPTED PRIVATE KEY') {
    throw new DeviceKeyError('invalid_private_key', 'encrypted private keys are not supported; decrypt it first');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new DeviceKeyError('invalid_private_key', 'the private key PEM could not be parsed', { cause: e });
  }
  if (!isP256(key, 'private')) throw new DeviceKeyError('unsupported_private_key', 'the private key is not EC P-256');
  return key;
}
