import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AdminClient, resolveAdminTarget } from '../admin-client.ts';
import { intOption, parseCommandArgs, parseJsonObject, requireOption, type OptionSpecs } from '../args.ts';
import { CliError } from '../cli-error.ts';
import type { Command, CommandContext } from '../command.ts';
import { displayPath } from '../paths.ts';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP } from './admin-options.ts';
import { formatDeviceTable, type DeviceResource } from './device-table.ts';
import { humanTime } from '../time-format.ts';

interface Subcommand {
  usage: string;
  about: string;
  options: OptionSpecs;
  /** how many positionals (the device id) */
  positionals: number;
  run(api: AdminClient, values: Record<string, string | boolean | undefined>, positionals: string[], ctx: CommandContext): Promise<void>;
}

const ID_OPTION = { id: { type: 'string' } } as const satisfies OptionSpecs;

/** The device id from `--id X` or a positional `X`. */
function deviceIdOf(sub: string, values: Record<string, unknown>, positionals: string[]): string {
  const fromFlag = values.id as string | undefined;
  if (fromFlag !== undefined && positionals.length > 0) throw new CliError('usage', `give the device id once (--id or as an argument)`);
  const id = fromFlag ?? positionals[0];
  return requireOption(`devices ${sub}`, 'id', id);
}

const enc = encodeURIComponent;

/** `show`, `block`, `unblock`: one request on `/v1/devices/{id}`; prints the device it returns. */
function runOnDevice(sub: string, method: 'GET' | 'PATCH', body?: { blocked: boolean }): Subcommand['run'] {
  return async (api, values, positionals, ctx) => {
    const id = deviceIdOf(sub, values, positionals);
    const { body: device } = await api.request<DeviceResource>(method, `/v1/devices/${enc(id)}`, body);
    ctx.out(JSON.stringify(device, null, 2));
  };
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  add: {
    usage: 'devices add --id <id> --key <public key file> [--metadata <json>]',
    about: 'register a device with its public key (SPKI PEM, X.509 certificate PEM or JWK JSON)',
    options: { ...ID_OPTION, key: { type: 'string' }, metadata: { type: 'string' } },
    positionals: 0,
    async run(api, values, positionals, ctx) {
      const id = deviceIdOf('add', values, positionals);
      const keyFile = path.resolve(ctx.cwd, requireOption('devices add', 'key', values.key as string | undefined));
      const publicKey = await readPublicKey(keyFile, ctx.cwd);
      const body: Record<string, unknown> = { id, publicKey };
      if (values.metadata !== undefined) body.metadata = parseJsonObject('metadata', values.metadata as string);
      const { body: device } = await api.request<DeviceResource>('POST', '/v1/devices', body);
      ctx.out(JSON.stringify(device, null, 2));
    },
  },
  list: {
    usage: 'devices list [--blocked true|false] [--limit <n>] [--json]',
    about: 'list devices (every page, up to --limit)',
    options: { blocked: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    positionals: 0,
    async run(api, values, _positionals, ctx) {
      const blocked = values.blocked as string | undefined;
      if (blocked !== undefined && blocked !== 'true' && blocked !== 'false') throw new CliError('usage', '--blocked must be true or false');
      const limit = intOption('devices list', 'limit', values.limit as string | undefined, { min: 1, max: 1_000_000 });
      const devices: DeviceResource[] = [];
      let cursor: string | null = null;
      do {
        const query = new URLSearchParams();
        if (blocked !== undefined) query.set('blocked', blocked);
        if (cursor !== null) query.set('cursor', cursor);
        if (limit !== undefined) query.set('limit', String(Math.min(limit - devices.length, 1000)));
        const qs = query.toString();
        const { body }: { body: { devices: DeviceResource[]; nextCursor: string | null } } = await api.request('GET', `/v1/devices${qs === '' ? '' : `?${qs}`}`);
        devices.push(...body.devices);
        cursor = body.devices.length === 0 ? null : (body.nextCursor ?? null);
      } while (cursor !== null && (limit === undefined || devices.length < limit));
      ctx.out(values.json === true ? JSON.stringify(devices, null, 2) : formatDeviceTable(devices));
    },
  },
  show: {
    usage: 'devices show <id>',
    about: 'show one device: credentials, status, config version',
    options: ID_OPTION,
    positionals: 1,
    run: runOnDevice('show', 'GET'),
  },
  block: {
    usage: 'devices block <id>',
    about: 'block a device (its live sessions are closed; it cannot connect until unblocked)',
    options: ID_OPTION,
    positionals: 1,
    run: runOnDevice('block', 'PATCH', { blocked: true }),
  },
  unblock: {
    usage: 'devices unblock <id>',
    about: 'unblock a device',
    options: ID_OPTION,
    positionals: 1,
    run: runOnDevice('unblock', 'PATCH', { blocked: false }),
  },
  keys: {
    usage: 'devices keys <id> | devices keys --unused-for <duration> [--json]',
    about: 'the key history of a device (every key with when it was registered, last used and removed); or, with --unused-for (e.g. 30d, 12h, 90m), every device key neither used nor registered for that long: keys safe to retire',
    options: { ...ID_OPTION, 'unused-for': { type: 'string' }, json: { type: 'boolean' } },
    positionals: 1,
    async run(api, values, positionals, ctx) {
      const unusedFor = values['unused-for'] as string | undefined;
      if (unusedFor !== undefined) {
        if (values.id !== undefined || positionals.length > 0) throw new CliError('usage', '--unused-for lists every device: give no device id');
        const seconds = parseDuration('devices keys', 'unused-for', unusedFor);
        const keys: UnusedKey[] = [];
        let cursor: string | null = null;
        do {
          const query = new URLSearchParams({ unusedFor: String(seconds), limit: '1000' });
          if (cursor !== null) query.set('cursor', cursor);
          const { body }: { body: { credentials: UnusedKey[]; nextCursor: string | null } } = await api.request('GET', `/v1/credentials?${query}`);
          keys.push(...body.credentials);
          cursor = body.credentials.length === 0 ? null : body.nextCursor;
        } while (cursor !== null);
        ctx.out(values.json === true ? JSON.stringify(keys, null, 2) : formatKeyTable(keys.map((k) => ({ ...k, removedAt: null })), { device: true }));
        return;
      }
      const id = deviceIdOf('keys', values, positionals);
      const { body } = await api.request<{ deviceId: string; keys: KeyRow[] }>('GET', `/v1/devices/${enc(id)}/keys`);
      ctx.out(values.json === true ? JSON.stringify(body.keys, null, 2) : formatKeyTable(body.keys, { device: false }));
    },
  },
  'remove-key': {
    usage: 'devices remove-key <id> --kid <kid> [--force]',
    about: 'remove one credential of a device (kept in its key history; sessions that used it are closed); a key that verified a connect within the server\'s keyInUseMinutes (default 60) is refused with credential_in_use unless --force',
    options: { ...ID_OPTION, kid: { type: 'string' }, force: { type: 'boolean' } },
    positionals: 1,
    async run(api, values, positionals, ctx) {
      const id = deviceIdOf('remove-key', values, positionals);
      const kid = requireOption('devices remove-key', 'kid', values.kid as string | undefined);
      const force = values.force === true ? '?force=true' : '';
      await api.request('DELETE', `/v1/devices/${enc(id)}/credentials/${enc(kid)}${force}`);
      ctx.out(`removed key ${kid} of ${id}${values.force === true ? ' (forced)' : ''}`);
    },
  },
  delete: {
    usage: 'devices delete <id>',
    about: 'delete a device and its credentials (its live sessions are closed)',
    options: ID_OPTION,
    positionals: 1,
    async run(api, values, positionals, ctx) {
      const id = deviceIdOf('delete', values, positionals);
      await api.request('DELETE', `/v1/devices/${enc(id)}`);
      ctx.out(`deleted ${id}`);
    },
  },
};

/** A key of `GET /v1/devices/{id}/keys` or `GET /v1/credentials` (api.md §Key history, §Unused keys). */
interface KeyRow {
  kid: string;
  fingerprint: string;
  createdAt: number;
  expiresAt: number | null;
  lastConnectAt: number | null;
  lastMessageAt: number | null;
  lastUsedAt: number | null;
  removedAt: number | null;
}
type UnusedKey = Omit<KeyRow, 'removedAt'> & { deviceId: string };

const DURATION = /^([0-9]{1,9})(s|m|h|d)$/;
const UNIT_S = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `30d`, `12h`, `90m`, `3600s` → seconds (at most ten years); anything else is a usage error naming the flag. */
export function parseDuration(command: string, flag: string, text: string): number {
  const m = DURATION.exec(text);
  const seconds = m === null ? Number.NaN : Number(m[1]) * UNIT_S[m[2] as keyof typeof UNIT_S];
  if (!(seconds > 0) || seconds > 10 * 366 * 86_400) throw new CliError('usage', `${command}: --${flag} must be a duration like 30d, 12h, 90m or 3600s (at most 10 years)`);
  return seconds;
}

/** The key table: kid, fingerprint (first 16 hex), registered, last used, last connect, removed (or the device, for unused keys). */
function formatKeyTable(keys: readonly (KeyRow & { deviceId?: string })[], o: { device: boolean }, now = Date.now()): string {
  const head = [...(o.device ? ['DEVICE'] : []), 'KID', 'FINGERPRINT', 'REGISTERED', 'LAST USED', 'LAST CONNECT', ...(o.device ? [] : ['REMOVED'])];
  const rows = keys.map((k) => [
    ...(o.device ? [k.deviceId ?? ''] : []),
    k.kid,
    k.fingerprint.slice(0, 16),
    humanTime(k.createdAt, now),
    humanTime(k.lastUsedAt, now),
    humanTime(k.lastConnectAt, now),
    ...(o.device ? [] : [k.removedAt === null ? '-' : humanTime(k.removedAt, now)]),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + (rows.length === 0 ? '\n(none)' : '');
}

function subHelp(name: string, sub: Subcommand): string {
  return `Usage: latchkey ${sub.usage} [connection options]\n\n${sub.about[0]!.toUpperCase()}${sub.about.slice(1)}.\n\n${ADMIN_OPTIONS_HELP}`;
}

const HELP = [
  'Usage: latchkey devices <subcommand> [options]',
  '',
  'Admin client of the provisioning HTTP API (api.md §Devices).',
  '',
  'Subcommands:',
  ...Object.values(SUBCOMMANDS).map((s) => `  ${s.usage}\n      ${s.about}`),
  '',
  ADMIN_OPTIONS_HELP,
  '',
  'Errors print as "error: <code>: <detail>" (the API\'s error code) and exit non-zero.',
].join('\n');

/** `latchkey devices add|list|show|block|unblock|keys|remove-key|delete` (docs/configuration.md). */
export const devicesCommand: Command = {
  name: 'devices',
  help: HELP,
  async run(ctx) {
    const [name, ...rest] = ctx.argv;
    if (name === '--help' || name === '-h') {
      ctx.out(HELP);
      return 0;
    }
    if (name === undefined) throw new CliError('usage', `latchkey devices needs a subcommand: ${Object.keys(SUBCOMMANDS).join(', ')}`);
    const sub = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
    if (sub === undefined) throw new CliError('usage', `unknown subcommand "devices ${name.slice(0, 24)}" (see latchkey devices --help)`);
    const { values, positionals } = parseCommandArgs(`devices ${name}`, rest, { ...sub.options, ...ADMIN_OPTIONS }, sub.positionals);
    if (values.help === true) {
      ctx.out(subHelp(name, sub));
      return 0;
    }
    const api = new AdminClient(
      await resolveAdminTarget({ url: values.url as string | undefined, adminToken: values['admin-token'] as string | undefined, dataDir: values['data-dir'] as string | undefined }, ctx.env, ctx.cwd),
    );
    await sub.run(api, values as Record<string, string | boolean | undefined>, positionals, ctx);
    return 0;
  },
};

/**
 * The public key to register: PEM text as is, or a JWK parsed from JSON. A private key is
 * refused here, before it could travel over the network (protocol.md §Keys).
 */
async function readPublicKey(file: string, cwd: string): Promise<string | object> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CliError('file_unreadable', `cannot read ${displayPath(cwd, file)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new CliError('private_key_rejected', `${displayPath(cwd, file)} is a private key; register the public key (device.pub.pem) instead`);
  }
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return text;
  let jwk: unknown;
  try {
    jwk = JSON.parse(trimmed);
  } catch {
    throw new CliError('invalid_public_key', `${displayPath(cwd, file)} is neither a PEM nor JSON`);
  }
  if (jwk !== null && typeof jwk === 'object' && 'd' in jwk) {
    throw new CliError('private_key_rejected', `${displayPath(cwd, file)} is a private JWK (it has "d"); register the public key only`);
  }
  return jwk as object;
}
