/**
 * `latchkey simulate` (cli.md §simulate): argument parsing, the embedded stack, the live progress
 * line, the summary or the `--json` report, and the exit code. The CLI wires it in; everything
 * process-related (streams, environment, the stack factory) is injected.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isDeviceClientError } from '@latchkey/device-sdk';
import { DEFAULT_TOKEN_RULES, isAudience, MAX_AUDIENCE_LENGTH } from '@latchkey/device-sdk/protocol';
import { createProgress, FLEET_DEFAULTS, formatSummary, reportProblems, runFleet, SimulatorError, type FleetResult } from '@latchkey/simulator';

/** A stack started in-process for `--embedded` (provisioning + broker on free ports). */
export interface EmbeddedStack {
  httpUrl: string;
  mqttUrl: string;
  adminToken: string;
  /** The stack's audience; default `latchkey`. */
  audience?: string;
  close(): Promise<void>;
}

export interface SimulateDeps {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Starts provisioning + broker in-process on free ports (composed by the CLI). */
  startStack?: () => Promise<EmbeddedStack>;
  clock?: () => number;
  /** Ends the steady state early (SIGINT); the run still drains and reports. */
  signal?: AbortSignal;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export const SIMULATE_HELP = `Usage: latchkey simulate [--embedded | --url <http> --mqtt-url <mqtt>] [options]

Provisions a fleet of simulated thermostats and smart locks (real keys, real tokens), connects it,
runs it, and reports connect latency, telemetry loss, command round trips and refused rogues.
Exits non-zero when a device failed to connect, telemetry was lost, or a rogue client got in.

Stack:
  --embedded               start provisioning + broker in this process on free ports
  --url <url>              the provisioning API (LATCHKEY_URL; default http://127.0.0.1:8080)
  --mqtt-url <url>         the broker (LATCHKEY_MQTT_URL; default mqtt://127.0.0.1:1883)
  --admin-token <token>    admin token (LATCHKEY_ADMIN_TOKEN; default: <data dir>/admin-token)
  --data-dir <dir>         where to find admin-token (LATCHKEY_DATA_DIR; default ./data)
  --audience <aud>         the broker's audience (LATCHKEY_AUDIENCE; default latchkey)
Fleet:
  --thermostats <n>        simulated thermostats (default ${FLEET_DEFAULTS.thermostats})
  --locks <n>              simulated smart locks (default ${FLEET_DEFAULTS.locks})
  --duration <s>           seconds of steady state after everyone connected (default ${FLEET_DEFAULTS.durationS})
  --ramp <per-s>           connects started per second (default ${FLEET_DEFAULTS.rampPerS})
  --token-ttl <s>          connect token lifetime; short values force refreshes (default ${FLEET_DEFAULTS.tokenTtlS})
  --commands-per-s <r>     backend commands through the HTTP API per second (default ${FLEET_DEFAULTS.commandsPerS})
  --rogue <n>              clients with forged, expired or cross-device tokens; all must be refused (default 0)
  --telemetry-interval <s> each device's reporting interval (default ${FLEET_DEFAULTS.telemetryIntervalS})
  --enroll                 register devices with an enrollment token instead of the batch API
  --seed <n>               seeds device behaviour and command choice (default ${FLEET_DEFAULTS.seed})
  --keep                   keep the run's devices and service account on an external stack
Output:
  --json                   print only the report (cli.md) on stdout
  -h, --help               show this help`;

const OPTIONS = {
  embedded: { type: 'boolean' }, url: { type: 'string' }, 'mqtt-url': { type: 'string' }, 'admin-token': { type: 'string' },
  'data-dir': { type: 'string' }, audience: { type: 'string' }, thermostats: { type: 'string' }, locks: { type: 'string' },
  duration: { type: 'string' }, ramp: { type: 'string' }, 'token-ttl': { type: 'string' }, 'commands-per-s': { type: 'string' },
  rogue: { type: 'string' }, 'telemetry-interval': { type: 'string' }, enroll: { type: 'boolean' }, seed: { type: 'string' },
  keep: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

/**
 * Runs `latchkey simulate`; resolves to the exit code (0 pass, 1 failed run or error, 2 usage).
 *
 * @example
 * ```ts
 * process.exitCode = await simulateCommand(process.argv.slice(3), {
 *   stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), startStack,
 * });
 * ```
 */
export async function simulateCommand(argv: readonly string[], deps: SimulateDeps): Promise<number> {
  const fail = (code: string, detail: string, exit: number): number => {
    deps.stderr.write(`error: ${code}: ${detail}\n`);
    return exit;
  };
  let values: ReturnType<typeof parse>;
  try {
    values = parse(argv);
  } catch (e) {
    return fail('usage', `${describeParseError(e)} (see latchkey simulate --help)`, EXIT_USAGE);
  }
  if (values.help === true) {
    deps.stdout.write(`${SIMULATE_HELP}\n`);
    return EXIT_OK;
  }
  let fleet;
  try {
    fleet = fleetSettings(values);
  } catch (e) {
    if (e instanceof UsageError) return fail('usage', `${e.message} (see latchkey simulate --help)`, EXIT_USAGE);
    throw e;
  }
  const json = values.json === true;
  const clock = deps.clock ?? Date.now;
  let stack: EmbeddedStack | null = null;
  try {
    let target: { httpUrl: string; mqttUrl: string; adminToken: string; audience: string };
    if (values.embedded === true) {
      if (deps.startStack === undefined) return fail('embedded_unavailable', 'no in-process stack is available here', EXIT_FAILED);
      stack = await deps.startStack();
      target = { httpUrl: stack.httpUrl, mqttUrl: stack.mqttUrl, adminToken: stack.adminToken, audience: stack.audience ?? fleet.audience };
    } else {
      const adminToken = await adminTokenOf(values, deps);
      if (adminToken === null) return fail('admin_token_missing', 'pass --admin-token, set LATCHKEY_ADMIN_TOKEN, or run where <data dir>/admin-token exists', EXIT_FAILED);
      target = {
        httpUrl: values.url ?? deps.env['LATCHKEY_URL'] ?? 'http://127.0.0.1:8080',
        mqttUrl: values['mqtt-url'] ?? deps.env['LATCHKEY_MQTT_URL'] ?? 'mqtt://127.0.0.1:1883',
        adminToken,
        audience: fleet.audience,
      };
    }
    const progress = createProgress({ write: (t) => deps.stdout.write(t), clock, enabled: !json && deps.stdout.isTTY === true });
    const run: FleetResult = await runFleet(
      { ...fleet, ...target, cleanup: stack === null && values.keep !== true },
      { clock, onProgress: (s) => progress.update(s), ...(deps.signal ? { signal: deps.signal } : {}) },
    );
    progress.finish();
    const problems = reportProblems(run.report);
    if (json) deps.stdout.write(`${JSON.stringify(run.report)}\n`);
    else deps.stdout.write(`${formatSummary(run.report)}${explain(run)}`);
    return problems.length === 0 ? EXIT_OK : EXIT_FAILED;
  } catch (e) {
    // Coded failures (the API's problem codes, the SDK's codes) carry no secret; anything else is a bug for the CLI to report.
    if (e instanceof SimulatorError || isDeviceClientError(e)) return fail(e.code, oneLine(e.message), EXIT_FAILED);
    throw e;
  } finally {
    await stack?.close();
  }
}

function parse(argv: readonly string[]) {
  const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError('simulate takes no positional arguments');
  return values;
}

/** cli.md §simulate flags → fleet options; each bad value is a usage error naming its flag. */
function fleetSettings(v: ReturnType<typeof parse>) {
  const int = (flag: keyof typeof v, dflt: number, min: number, max: number): number => {
    const raw = v[flag];
    if (raw === undefined) return dflt;
    const n = typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be an integer in ${min}..${max}`);
    return n;
  };
  const rate = (flag: keyof typeof v, dflt: number, min: number, max: number): number => {
    const raw = v[flag];
    if (raw === undefined) return dflt;
    const n = typeof raw === 'string' && /^\d{1,9}(\.\d{1,6})?$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(n >= min && n <= max)) throw new UsageError(`--${flag} must be a number in ${min}..${max}`);
    return n;
  };
  if (v.embedded === true && (v.url !== undefined || v['mqtt-url'] !== undefined)) throw new UsageError('--embedded and --url/--mqtt-url exclude each other');
  const audience = v.audience ?? DEFAULT_TOKEN_RULES.audience;
  if (!isAudience(audience)) throw new UsageError(`--audience must be 1 to ${MAX_AUDIENCE_LENGTH} characters`);
  const settings = {
    thermostats: int('thermostats', FLEET_DEFAULTS.thermostats, 0, 100_000),
    locks: int('locks', FLEET_DEFAULTS.locks, 0, 100_000),
    durationS: int('duration', FLEET_DEFAULTS.durationS, 0, 86_400),
    rampPerS: rate('ramp', FLEET_DEFAULTS.rampPerS, 0.01, 100_000),
    tokenTtlS: int('token-ttl', FLEET_DEFAULTS.tokenTtlS, 1, 86_400),
    commandsPerS: rate('commands-per-s', FLEET_DEFAULTS.commandsPerS, 0, 10_000),
    rogue: int('rogue', 0, 0, 10_000),
    telemetryIntervalS: int('telemetry-interval', FLEET_DEFAULTS.telemetryIntervalS, 1, 86_400),
    seed: int('seed', FLEET_DEFAULTS.seed, 0, 2 ** 32 - 1),
    provisioning: v.enroll === true ? ('enroll' as const) : ('batch' as const),
    audience,
  };
  if (settings.thermostats + settings.locks === 0) throw new UsageError('--thermostats + --locks must be at least 1');
  return settings;
}

/** http-api.md §Authentication: flag, environment, or the file `latchkey up` wrote. */
async function adminTokenOf(v: ReturnType<typeof parse>, deps: SimulateDeps): Promise<string | null> {
  const given = v['admin-token'] ?? deps.env['LATCHKEY_ADMIN_TOKEN'];
  if (given !== undefined && given.length > 0) return given;
  const dataDir = path.resolve(deps.cwd, v['data-dir'] ?? deps.env['LATCHKEY_DATA_DIR'] ?? 'data');
  try {
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    return token.length > 0 ? token : null;
  } catch {
    return null;
  }
}

/** After a failed run: why, by error code (never a token or key). */
function explain(run: FleetResult): string {
  const { details } = run;
  const lines: string[] = [];
  const list = (m: Record<string, number>) => Object.entries(m).map(([k, n]) => `${k} ×${n}`).join(', ');
  if (Object.keys(details.connectFailures).length > 0) lines.push(`  devices stopped: ${list(details.connectFailures)}`);
  if (Object.keys(details.commandFailures).length > 0) lines.push(`  commands failed: ${list(details.commandFailures)}`);
  if (details.publishFailures > 0) lines.push(`  publishes refused by the SDK: ${details.publishFailures}`);
  const admitted = details.rogues.filter((r) => !r.refused);
  if (admitted.length > 0) lines.push(`  rogues not refused: ${admitted.map((r) => `${r.kind} (${r.code})`).join(', ')}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** Node's parseArgs messages are long and may echo a value (a pasted secret): keep the option name. */
function describeParseError(e: unknown): string {
  if (e instanceof UsageError) return e.message;
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : '';
  const option = /'(-{1,2}[A-Za-z0-9-]*)/.exec(message)?.[1] ?? 'an option';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return message.includes('does not take an argument') ? `option ${option} takes no value` : `option ${option} needs a value`;
  }
  return 'malformed arguments';
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
