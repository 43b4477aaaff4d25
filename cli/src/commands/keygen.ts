import { access } from 'node:fs/promises';
import path from 'node:path';
import { DeviceKeyError, generateDeviceKeyPair, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, saveKeyPair } from '@latchkey/device-sdk';
import { canonicalSpkiDer, fingerprintOf } from '@latchkey/device-sdk/protocol';
import { parseCommandArgs, requireOption } from '../args.ts';
import { CliError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { displayPath } from '../paths.ts';

const HELP = `Usage: latchkey keygen --out <dir>

Generates a device key pair (EC P-256) into <dir>, creating it (mode 0700) when missing:
  device.key.pem   the private key, PKCS#8 PEM, mode 0600: it never leaves the device
  device.pub.pem   the public key, SPKI PEM: register it with latchkey devices add
Refuses to overwrite existing key files.

Options:
  --out <dir>   directory for the two files (required)
  -h, --help    show this help`;

/** `latchkey keygen` (docs/configuration.md). */
export const keygenCommand: Command = {
  name: 'keygen',
  help: HELP,
  async run(ctx) {
    const { values } = parseCommandArgs('keygen', ctx.argv, { out: { type: 'string' } }, 0);
    const dir = path.resolve(ctx.cwd, requireOption('keygen', 'out', values.out));
    // Refuse before generating anything, so neither file is touched.
    for (const name of [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE]) {
      const file = path.join(dir, name);
      if (await exists(file)) throw new CliError('key_exists', `${displayPath(ctx.cwd, file)} already exists; choose another --out or remove it`);
    }
    const pair = generateDeviceKeyPair();
    let written;
    try {
      written = await saveKeyPair(dir, pair);
    } catch (e) {
      if (e instanceof DeviceKeyError) throw new CliError(e.code, e.message);
      throw new CliError('file_unreadable', `cannot write keys into ${displayPath(ctx.cwd, dir)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const pub = displayPath(ctx.cwd, written.publicKeyPath);
    ctx.out(`private key: ${displayPath(ctx.cwd, written.privateKeyPath)} (mode 0600; keep it on the device)`);
    ctx.out(`public key:  ${pub}`);
    ctx.out(`fingerprint: ${fingerprintOf(canonicalSpkiDer(pair.publicKey))}`);
    ctx.out(`register it: latchkey devices add --id <device-id> --key ${pub}`);
    return 0;
  },
};

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
