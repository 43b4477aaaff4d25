import { AdminClient, resolveAdminTarget } from '../admin-client.ts';
import { intOption, parseCommandArgs, parseJsonObject } from '../args.ts';
import { CliError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { humanTime, isoTime } from '../time-format.ts';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP } from './admin-options.ts';

const DEFAULT_TTL = 3600;
const MAX_TTL = 366 * 86_400;

const HELP = `Usage: latchkey enroll-token create [--uses <n>] [--ttl <seconds>] [--id-pattern <regex>] [--metadata <json>]

Creates a zero-touch enrollment token (api.md §Zero-touch enrollment) and prints only the
token on stdout (its expiry goes to stderr). The secret is shown once; the server keeps a hash.
Devices present it to POST /v1/enroll with their new public key and a proof of possession.

Options:
  --uses <n>              how many devices may enroll with it (default 1)
  --ttl <seconds>         lifetime (default ${DEFAULT_TTL})
  --id-pattern <regex>    device ids it may enroll (default: any valid id)
  --metadata <json>       metadata given to every device it enrolls
  -h, --help              show this help

${ADMIN_OPTIONS_HELP}`;

/** `latchkey enroll-token create` (docs/configuration.md). */
export const enrollTokenCommand: Command = {
  name: 'enroll-token',
  help: HELP,
  async run(ctx) {
    const [sub, ...rest] = ctx.argv;
    if (sub === '--help' || sub === '-h') {
      ctx.out(HELP);
      return 0;
    }
    if (sub !== 'create') {
      throw new CliError('usage', sub === undefined ? 'latchkey enroll-token needs a subcommand: create' : `unknown subcommand "enroll-token ${sub.slice(0, 24)}" (see latchkey enroll-token --help)`);
    }
    const { values } = parseCommandArgs(
      'enroll-token create',
      rest,
      { uses: { type: 'string' }, ttl: { type: 'string' }, 'id-pattern': { type: 'string' }, metadata: { type: 'string' }, ...ADMIN_OPTIONS },
      0,
    );
    if (values.help === true) {
      ctx.out(HELP);
      return 0;
    }
    const body: Record<string, unknown> = {
      uses: intOption('enroll-token create', 'uses', values.uses, { min: 1, max: 1_000_000 }) ?? 1,
      ttlSeconds: intOption('enroll-token create', 'ttl', values.ttl, { min: 1, max: MAX_TTL }) ?? DEFAULT_TTL,
    };
    if (values['id-pattern'] !== undefined) body.idPattern = values['id-pattern'];
    if (values.metadata !== undefined) body.metadata = parseJsonObject('metadata', values.metadata);
    const api = new AdminClient(await resolveAdminTarget({ url: values.url, adminToken: values['admin-token'], dataDir: values['data-dir'] }, ctx.env, ctx.cwd));
    const { body: created } = await api.request<{ token: string; expiresAt: unknown }>('POST', '/v1/enrollment-tokens', body);
    ctx.out(created.token);
    const expires = typeof created.expiresAt === 'number' ? `${isoTime(created.expiresAt)} (${humanTime(created.expiresAt)})` : String(created.expiresAt);
    ctx.err(`enrollment token expires at ${expires}; it is shown only once`);
    return 0;
  },
};
