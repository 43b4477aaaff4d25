/**
 * `latchkey simulate` (docs/simulator.md): its flags, the target stack (embedded, or an external one
 * named by URL), the live progress line, the summary or the `--json` report, and the exit code
 * (0 a clean run, 1 a failed run or a coded failure, 2 usage). Failures are CliErrors, printed by
 * the CLI like every command's; the embedded stack is injected.
 */
import { DEVICE_CLIENT_ERROR_CODES, isDeviceClientError } from '@latchkey/device-sdk';
import { DEFAULT_TOKEN_RULES, isAudience, MAX_AUDIENCE_LENGTH } from '@latchkey/device-sdk/protocol';
import { isApiErrorCode } from '@latchkey/provisioning/errors';
import { createProgress, FLEET_DEFAULTS, formatSummary, reportProblems, runFleet, SimulatorError, type FleetResult } from '@latchkey/simulator';
import { DEFAULT_API_URL, nonEmpty, resolveAdminTarget } from '../admin-client.ts';
import { intOption, numberOption, parseCommandArgs, type ParsedOptions } from '../args.ts';
import { CliError, type CliErrorCode } from '../cli-error.ts';
import type { CommandContext } from '../command.ts';

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
  /**
   * Starts provisioning + broker in-process on free ports (the `latchkey up` composition); with
   * `gcpProject`, Cloud IoT Core compatibility on for that project.
   */
  startStack: (o?: { gcpProject?: string }) => Promise<EmbeddedStack>;
  clock?: () => number;
  /** Ends the steady state early (SIGINT); the run still drains and reports. */
  signal?: AbortSignal;
}

const DEFAULT_MQTT_URL = 'mqtt://127.0.0.1:1883';

export const SIMULATE_HELP = `Usage: latchkey simulate [--embedded | --url <http> --mqtt-url <mqtt>] [options]

Provisions a fleet of simulated thermostats and smart locks (real keys, real tokens), connects it,
runs it, and reports connect latency, telemetry loss, command round trips and refused rogues.
Exits non-zero when a device failed to connect, telemetry was lost, a rogue client got in, or a
tampered message was not refused.

Stack:
  --embedded               start provisioning + broker in this process on free ports
  --url <url>              the provisioning API (LATCHKEY_URL; default ${DEFAULT_API_URL})
  --mqtt-url <url>         the broker (LATCHKEY_MQTT_URL; default ${DEFAULT_MQTT_URL})
  --admin-token <token>    admin token (LATCHKEY_ADMIN_TOKEN; default: <data dir>/admin-token)
  --data-dir <dir>         where to find admin-token (LATCHKEY_DATA_DIR; default ./data)
  --audience <aud>         the broker's audience (LATCHKEY_AUDIENCE; default latchkey)
Fleet:
  --thermostats <n>        simulated thermostats (default ${FLEET_DEFAULTS.thermostats})
  --locks <n>              simulated smart locks (default ${FLEET_DEFAULTS.locks})
  --gcp <n>                thermostats speaking the Cloud IoT Core dialect (path client id, RS256/ES256,
                           /devices/{id}/events…), imported with POST /v1/import/gcp (default 0)
  --gcp-project <id>       their Google Cloud project; the stack must serve it (--gcp-project of up;
                           --embedded turns it on) (default ${FLEET_DEFAULTS.gcpProject})
  --duration <s>           seconds of steady state after everyone connected (default ${FLEET_DEFAULTS.durationS})
  --ramp <per-s>           connects started per second (default ${FLEET_DEFAULTS.rampPerS})
  --token-ttl <s>          connect token lifetime; short values force refreshes (default ${FLEET_DEFAULTS.tokenTtlS})
  --commands-per-s <r>     backend commands through the HTTP API per second (default ${FLEET_DEFAULTS.commandsPerS})
  --rogue <n>              clients with forged, expired or cross-device tokens; all must be refused (default 0)
  --signed                 devices sign every message; the counting service account verifies each
  --tamper <n>             a tampering-broker rogue re-publishes n altered copies; all must be refused
                           (needs --signed; default 0)
  --telemetry-interval <s> each device's reporting interval (default ${FLEET_DEFAULTS.telemetryIntervalS})
  --enroll                 register devices with an enrollment token instead of the batch API
  --seed <n>               seeds device behaviour and command choice (default ${FLEET_DEFAULTS.seed})
  --keep                   keep the run's devices and service account on an external stack
Output:
  --json                   print only the report (docs/simulator.md) on stdout
  -h, --help               show this help`;

const OPTIONS = {
  embedded: { type: 'boolean' }, url: { type: 'string' }, 'mqtt-url': { type: 'string' }, 'admin-token': { type: 'string' },
  'data-dir': { type: 'string' }, audience: { type: 'string' }, thermostats: { type: 'string' }, locks: { type: 'string' },
  duration: { type: 'string' }, ramp: { type: 'string' }, 'token-ttl': { type: 'string' }, 'commands-per-s': { type: 'string' },
  rogue: { type: 'string' }, 'telemetry-interval': { type: 'string' }, enroll: { type: 'boolean' }, seed: { type: 'string' },
  keep: { type: 'boolean' }, json: { type: 'boolean' }, gcp: { type: 'string' }, 'gcp-project': { type: 'string' },
  signed: { type: 'boolean' }, tamper: { type: 'string' },
} as const;

/**
 * Runs `latchkey simulate` and resolves to its exit code; throws CliError (usage: 2, else 1).
 *
 * @example
 * ```ts
 * const code = await runSimulate(ctx, { startStack: startEmbeddedStack });
 * ```
 */
export async function runSimulate(ctx: CommandContext, deps: SimulateDeps): Promise<number> {
  const { values } = parseCommandArgs('simulate', ctx.argv, OPTIONS, 0);
  if (values.help === true) {
    ctx.out(SIMULATE_HELP);
    return 0;
  }
  const fleet = fleetSettings(values);
  const json = values.json === true;
  const clock = deps.clock ?? Date.now;
  let stack: EmbeddedStack | null = null;
  try {
    let target: { httpUrl: string; mqttUrl: string; adminToken: string; audience: string };
    if (values.embedded === true) {
      stack = await deps.startStack(fleet.gcp > 0 ? { gcpProject: fleet.gcpProject } : {});
      target = { httpUrl: stack.httpUrl, mqttUrl: stack.mqttUrl, adminToken: stack.adminToken, audience: stack.audience ?? fleet.audience };
    } else {
      const api = await resolveAdminTarget({ url: values.url, adminToken: values['admin-token'], dataDir: values['data-dir'] }, ctx.env, ctx.cwd);
      const mqttUrl = values['mqtt-url'] ?? nonEmpty(ctx.env.LATCHKEY_MQTT_URL) ?? DEFAULT_MQTT_URL;
      target = { httpUrl: api.baseUrl.href, mqttUrl, adminToken: api.adminToken, audience: fleet.audience };
    }
    const progress = createProgress({ write: ctx.write, clock, enabled: !json && ctx.isTTY });
    const run: FleetResult = await runFleet(
      { ...fleet, ...target, cleanup: stack === null && values.keep !== true },
      { clock, onProgress: (s) => progress.update(s), ...(deps.signal ? { signal: deps.signal } : {}) },
    );
    progress.finish();
    if (json) ctx.out(JSON.stringify(run.report));
    else ctx.write(`${formatSummary(run.report)}${explain(run)}`);
    return reportProblems(run.report).length === 0 ? 0 : 1;
  } catch (e) {
    // coded failures (the API's problem codes, the SDK's) carry no secret; anything else is a bug
    if (e instanceof SimulatorError || isDeviceClientError(e)) throw new CliError(knownCode(e.code), e.message);
    throw e;
  } finally {
    await stack?.close();
  }
}

/** The code of a failure the simulator reports as it is, when the CLI knows it. */
function knownCode(code: string): CliErrorCode {
  if (isApiErrorCode(code) || (DEVICE_CLIENT_ERROR_CODES as readonly string[]).includes(code)) return code as CliErrorCode;
  return 'api_error';
}

/** The simulate flags → fleet options; each bad value is a usage error naming its flag. */
function fleetSettings(v: ParsedOptions<typeof OPTIONS>) {
  const int = (flag: keyof typeof OPTIONS, dflt: number, min: number, max: number) => intOption('simulate', flag, v[flag] as string | undefined, { min, max }) ?? dflt;
  const rate = (flag: keyof typeof OPTIONS, dflt: number, min: number, max: number) => numberOption('simulate', flag, v[flag] as string | undefined, { min, max }) ?? dflt;
  if (v.embedded === true && (v.url !== undefined || v['mqtt-url'] !== undefined)) throw new CliError('usage', '--embedded and --url/--mqtt-url exclude each other');
  const audience = v.audience ?? DEFAULT_TOKEN_RULES.audience;
  if (!isAudience(audience)) throw new CliError('usage', `--audience must be 1 to ${MAX_AUDIENCE_LENGTH} characters`);
  const settings = {
    thermostats: int('thermostats', FLEET_DEFAULTS.thermostats, 0, 100_000),
    locks: int('locks', FLEET_DEFAULTS.locks, 0, 100_000),
    gcp: int('gcp', FLEET_DEFAULTS.gcp, 0, 100_000),
    gcpProject: v['gcp-project'] ?? FLEET_DEFAULTS.gcpProject,
    durationS: int('duration', FLEET_DEFAULTS.durationS, 0, 86_400),
    rampPerS: rate('ramp', FLEET_DEFAULTS.rampPerS, 0.01, 100_000),
    tokenTtlS: int('token-ttl', FLEET_DEFAULTS.tokenTtlS, 1, DEFAULT_TOKEN_RULES.maxTokenLifetime),
    commandsPerS: rate('commands-per-s', FLEET_DEFAULTS.commandsPerS, 0, 10_000),
    rogue: int('rogue', 0, 0, 10_000),
    signed: v.signed === true,
    tamper: int('tamper', 0, 0, 10_000),
    telemetryIntervalS: int('telemetry-interval', FLEET_DEFAULTS.telemetryIntervalS, 1, 86_400),
    seed: int('seed', FLEET_DEFAULTS.seed, 0, 2 ** 32 - 1),
    provisioning: v.enroll === true ? ('enroll' as const) : ('batch' as const),
    audience,
  };
  if (settings.thermostats + settings.locks + settings.gcp === 0) throw new CliError('usage', '--thermostats + --locks + --gcp must be at least 1');
  if (settings.signed && settings.gcp > 0) throw new CliError('usage', '--signed needs --gcp 0 (Cloud IoT Core devices do not sign their messages)');
  if (settings.tamper > 0 && !settings.signed) throw new CliError('usage', '--tamper needs --signed');
  if (settings.tamper > 0 && settings.thermostats + settings.locks < 2) throw new CliError('usage', '--tamper needs at least 2 devices');
  return settings;
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
  if (Object.keys(details.refusedOther).length > 0) lines.push(`  signed messages refused (not a tampered copy): ${list(details.refusedOther)}`);
  if (details.tampered !== null) lines.push(`  tampered copies by kind: ${list(details.tampered)}${details.tamperFailures > 0 ? `; ${details.tamperFailures} could not be published` : ''}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
