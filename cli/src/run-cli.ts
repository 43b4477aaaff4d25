import type { CommandContext, CommandEntry } from './command.ts';
import { redactSecrets } from './redact.ts';

/**
 * Every command, in the order `latchkey --help` lists them (docs/configuration.md). Modules load on demand, so
 * `latchkey token` does not pay for the broker, fastify and SQLite.
 */
export const COMMANDS: readonly CommandEntry[] = Object.freeze([
  { name: 'up', summary: 'run the provisioning API and the MQTT broker (SQLite in ./data)', load: async () => (await import('./commands/up.ts')).upCommand },
  { name: 'keygen', summary: 'generate a device key pair (device.key.pem 0600 + device.pub.pem)', load: async () => (await import('./commands/keygen.ts')).keygenCommand },
  { name: 'token', summary: 'print a connect token for a device (the MQTT password)', load: async () => (await import('./commands/token.ts')).tokenCommand },
  { name: 'devices', summary: 'add, list, show, block, unblock or delete devices (admin API client)', load: async () => (await import('./commands/devices.ts')).devicesCommand },
  { name: 'enroll-token', summary: 'create an enrollment token for zero-touch enrollment', load: async () => (await import('./commands/enroll-token.ts')).enrollTokenCommand },
  { name: 'import', summary: 'import a Cloud IoT Core registry export (gcloud JSON or EMQX records)', load: async () => (await import('./commands/import.ts')).importCommand },
  { name: 'simulate', summary: 'run a simulated fleet of thermostats and locks and report', load: async () => (await import('./commands/simulate.ts')).simulateCommandEntry },
]);

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: latchkey <command> [options]',
    '',
    'Device identity and MQTT authentication for IoT fleets.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run latchkey <command> --help for the options of a command.',
    'Configuration reference: docs/configuration.md',
  ].join('\n');
}

export type CliIo = Omit<CommandContext, 'argv'>;

/** Commands whose `--help` is handled per subcommand. */
const WITH_SUBCOMMANDS = new Set(['devices', 'enroll-token', 'import']);

/**
 * Runs one `latchkey` invocation and resolves to its exit code. Every failure is printed as
 * one line `error: <code>: <detail>` on stderr; secrets are redacted from unexpected errors.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2), { env: process.env, cwd: process.cwd(), out, err });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
      io.out(topic === undefined ? mainHelp() : (await topic.load()).help);
      return 0;
    }
    const entry = COMMANDS.find((c) => c.name === name);
    if (entry === undefined) {
      const { CliError } = await import('./cli-error.ts');
      throw new CliError('usage', `unknown command "${name.length > 24 ? `${name.slice(0, 12)}…` : name}" (see latchkey --help)`);
    }
    const command = await entry.load();
    if (!WITH_SUBCOMMANDS.has(name) && (rest.includes('--help') || rest.includes('-h'))) {
      io.out(command.help);
      return 0;
    }
    return await command.run({ ...io, argv: rest });
  } catch (e) {
    // loaded here, not with this module: `latchkey --help` loads nothing beyond the CLI's own files
    const { CliError, EXIT_FAILURE, formatError } = await import('./cli-error.ts');
    if (e instanceof CliError) {
      io.err(redactSecrets(formatError(e)));
      return e.exitCode;
    }
    const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    io.err(redactSecrets(formatError(new CliError('internal', detail))));
    return EXIT_FAILURE;
  }
}
