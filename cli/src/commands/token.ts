import path from 'node:path';
// The SDK's light entry: keys and minting only (no MQTT client, no verifier), so the command starts fast.
import {
  DEFAULT_TOKEN_RULES,
  DEVICE_ID_PATTERN,
  DeviceKeyError,
  isAudience,
  isKid,
  isPrincipal,
  loadPrivateKey,
  MAX_AUDIENCE_LENGTH,
  MAX_KID_LENGTH,
  mintConnectToken,
} from '@latchkey/device-sdk/token';
import { intOption, parseCommandArgs, requireOption } from '../args.ts';
import { CliError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { displayPath } from '../paths.ts';

const DEFAULT_TTL = 3600;
const MAX_TTL = DEFAULT_TOKEN_RULES.maxTokenLifetime;

const HELP = `Usage: latchkey token --device <id> --key <private key pem> [options]

Mints an ES256 connect token (protocol.md) and prints only the token, so any MQTT client can
connect as the device:
  mosquitto_pub -i thermo-1 -u x -P "$(latchkey token --device thermo-1 --key thermo-1/device.key.pem)" \\
    -t devices/thermo-1/telemetry -m '{"temp":21.5}'

Options:
  --device <id>      device id (or svc:<name> for a service account); the MQTT client id (required)
  --key <file>       the device's private key PEM, PKCS#8 or SEC 1 (required)
  --audience <aud>   the broker's audience (default ${DEFAULT_TOKEN_RULES.audience})
  --ttl <seconds>    lifetime, 1..${MAX_TTL} (default ${DEFAULT_TTL})
  --kid <kid>        name the credential to verify with, 1..${MAX_KID_LENGTH} characters (default: the broker tries each)
  --jti              add a random single-use token id (for brokers run with --require-jti)
  -h, --help         show this help`;

/** `latchkey token` (docs/configuration.md): prints a connect token and nothing else on stdout. */
export const tokenCommand: Command = {
  name: 'token',
  help: HELP,
  async run(ctx) {
    const { values } = parseCommandArgs(
      'token',
      ctx.argv,
      { device: { type: 'string' }, key: { type: 'string' }, audience: { type: 'string' }, ttl: { type: 'string' }, kid: { type: 'string' }, jti: { type: 'boolean' } },
      0,
    );
    const subject = requireOption('token', 'device', values.device);
    if (!isPrincipal(subject)) {
      throw new CliError('usage', `--device must be a device id (${DEVICE_ID_PATTERN.source}) or svc:<name>`);
    }
    const keyFile = path.resolve(ctx.cwd, requireOption('token', 'key', values.key));
    const ttlSeconds = intOption('token', 'ttl', values.ttl, { min: 1, max: MAX_TTL }) ?? DEFAULT_TTL;
    // the verifier's own rules (protocol core): never print a token the broker would refuse for them
    const audience = values.audience ?? DEFAULT_TOKEN_RULES.audience;
    if (!isAudience(audience)) throw new CliError('usage', `--audience must be 1 to ${MAX_AUDIENCE_LENGTH} characters`);
    const kid = values.kid;
    if (kid !== undefined && !isKid(kid)) throw new CliError('usage', `--kid must be 1 to ${MAX_KID_LENGTH} characters`);

    let privateKey;
    try {
      privateKey = await loadPrivateKey(keyFile);
    } catch (e) {
      // The key's content never reaches the message: only the path and what is wrong.
      if (e instanceof DeviceKeyError) throw new CliError(e.code, `${displayPath(ctx.cwd, keyFile)}: ${e.message}`);
      throw new CliError('file_unreadable', `cannot read ${displayPath(ctx.cwd, keyFile)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const { token } = await mintConnectToken({ subject, privateKey, audience, ttlSeconds, ...(kid !== undefined ? { kid } : {}), ...(values.jti === true ? { jti: true } : {}) });
    ctx.out(token);
    return 0;
  },
};
