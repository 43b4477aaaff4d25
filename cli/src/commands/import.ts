import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AdminClient, resolveAdminTarget } from '../admin-client.ts';
import { parseCommandArgs } from '../args.ts';
import { CliError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { displayPath } from '../paths.ts';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP } from './admin-options.ts';

/** An import of 10,000 devices (RSA, X.509) takes a while to parse and store. */
const IMPORT_TIMEOUT_MS = 300_000;

const HELP = `Usage: latchkey import gcp <file> [--project <id>] [--location <region>] [--registry <id>] [--dry-run] [--json]

Imports a Cloud IoT Core registry export (docs/migrating-from-cloud-iot-core.md): the JSON that
\`gcloud iot devices list --format=json\` (with a full field mask) or \`describe\` prints, or EMQX's
migration records. All or nothing: one refused device refuses the whole file, and every refused
device is listed with its reason. Importing the same file again changes nothing.

Options:
  --project <id>        the Cloud IoT Core project, for records that do not name one
  --location <region>   the location (region), for records that do not name one
  --registry <id>       the registry, for records that do not name one
                        (a record naming another one than the option is refused: binding_conflict)
  --dry-run             check everything, store nothing
  --json                print the result as JSON: {imported, unchanged, refused, dryRun}
  -h, --help            show this help

${ADMIN_OPTIONS_HELP}`;

interface ImportResult {
  imported: number;
  unchanged: number;
  refused: { id: string; code: string; detail: string }[];
  dryRun: boolean;
}

/** `latchkey import gcp` (docs/configuration.md, POST /v1/import/gcp). */
export const importCommand: Command = {
  name: 'import',
  help: HELP,
  async run(ctx) {
    const [source, ...rest] = ctx.argv;
    if (source === '--help' || source === '-h') {
      ctx.out(HELP);
      return 0;
    }
    if (source !== 'gcp') {
      throw new CliError('usage', source === undefined ? 'latchkey import needs a source: gcp' : `unknown import source "${source.slice(0, 24)}" (see latchkey import --help)`);
    }
    const { values, positionals } = parseCommandArgs(
      'import gcp',
      rest,
      { project: { type: 'string' }, location: { type: 'string' }, registry: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, ...ADMIN_OPTIONS },
      1,
    );
    if (values.help === true) {
      ctx.out(HELP);
      return 0;
    }
    const file = positionals[0];
    if (file === undefined) throw new CliError('usage', 'latchkey import gcp needs the export file (see latchkey import --help)');
    const absolute = path.resolve(ctx.cwd, file);
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (e) {
      throw new CliError('file_unreadable', `cannot read ${displayPath(ctx.cwd, absolute)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const query = new URLSearchParams();
    for (const name of ['project', 'location', 'registry'] as const) {
      const v = values[name];
      if (v !== undefined) query.set(name, v);
    }
    if (values['dry-run'] === true) query.set('dryRun', 'true');
    const api = new AdminClient(await resolveAdminTarget({ url: values.url, adminToken: values['admin-token'], dataDir: values['data-dir'] }, ctx.env, ctx.cwd));
    let result: ImportResult;
    try {
      const qs = query.toString();
      ({ body: result } = await api.request<ImportResult>('POST', `/v1/import/gcp${qs === '' ? '' : `?${qs}`}`, undefined, { rawJson: text, timeoutMs: IMPORT_TIMEOUT_MS }));
    } catch (e) {
      // every refused device on a line of its own (stderr), then the one error line
      const refused = e instanceof CliError && e.code === 'import_rejected' ? (e.cause as Partial<ImportResult> | undefined)?.refused : undefined;
      if (Array.isArray(refused)) {
        if (values.json === true) ctx.out(JSON.stringify({ imported: 0, unchanged: 0, refused, dryRun: values['dry-run'] === true }, null, 2));
        for (const r of refused) ctx.err(`refused ${r.id}: ${r.code}: ${r.detail}`);
      }
      throw e;
    }
    if (values.json === true) {
      ctx.out(JSON.stringify(result, null, 2));
    } else {
      const what = result.dryRun ? 'would import' : 'imported';
      ctx.out(`${what} ${result.imported} device(s), ${result.unchanged} unchanged${result.dryRun ? ' (dry run: nothing stored)' : ''}`);
    }
    return 0;
  },
};
