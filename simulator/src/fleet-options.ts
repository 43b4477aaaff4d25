/**
 * The fleet runner's settings: one typed interface, defaults in one const, validated once
 * (every problem named in one TypeError), frozen.
 */

export interface FleetOptions {
  /** The provisioning HTTP API, e.g. `http://127.0.0.1:8080`. */
  httpUrl: string;
  /** The broker, e.g. `mqtt://127.0.0.1:1883`. */
  mqttUrl: string;
  /** The admin token of the HTTP API (never logged). */
  adminToken: string;
  thermostats: number;
  locks: number;
  /** Seconds of steady state after every device has connected. */
  durationS: number;
  /** Connects started per second. */
  rampPerS: number;
  /** Lifetime of the devices' connect tokens, seconds; short values force refreshes mid-run. */
  tokenTtlS: number;
  /** Lifetime of the counting service account's tokens, seconds (kept long: it is the instrument). */
  serviceTokenTtlS: number;
  /** Backend commands per second sent through `POST /v1/devices/{id}/commands`. */
  commandsPerS: number;
  /** Rogue clients (forged, expired, cross-device tokens) that must all be refused. */
  rogue: number;
  /** Each device's telemetry interval, seconds (its `reportingIntervalS`). */
  telemetryIntervalS: number;
  /** The broker's audience (its rule is the SDK's: checked by minting before the run registers anything). */
  audience: string;
  /** Seeds device behaviour and command choice. */
  seed: number;
  /** How long a command may wait for the device's reply, ms. */
  commandTimeoutMs: number;
  /** After the steady state, how long to wait for outstanding telemetry to arrive, ms. */
  drainTimeoutMs: number;
  /** How long one device may take to connect (retries included), ms. */
  connectTimeoutMs: number;
  /** Delete the run's devices and service account afterwards. */
  cleanup: boolean;
  /**
   * Cloud IoT Core devices (thermostats speaking that dialect, imported with `POST /v1/import/gcp`)
   * mixed into the fleet: the broker must run with `gcpProject` among its `--gcp-project`s.
   */
  gcp: number;
  /** The Google Cloud project id the Cloud IoT Core devices use. */
  gcpProject: string;
  /** Devices sign every message (protocol.md §Signed messages); the counting service account verifies each. */
  signed: boolean;
  /** Altered copies of device messages the tampering-broker rogue re-publishes (needs `signed`); every one must be refused. */
  tamper: number;
}

export const FLEET_DEFAULTS = Object.freeze({
  thermostats: 10,
  locks: 10,
  durationS: 30,
  rampPerS: 200,
  tokenTtlS: 3600,
  serviceTokenTtlS: 3600,
  commandsPerS: 5,
  rogue: 0,
  telemetryIntervalS: 5,
  audience: 'latchkey',
  seed: 1,
  commandTimeoutMs: 10_000,
  drainTimeoutMs: 15_000,
  connectTimeoutMs: 30_000,
  cleanup: false,
  gcp: 0,
  gcpProject: 'latchkey-sim',
  signed: false,
  tamper: 0,
}) satisfies Partial<FleetOptions>;

type Required = Pick<FleetOptions, 'httpUrl' | 'mqttUrl' | 'adminToken'>;

const INTEGER_RANGES: { [K in keyof FleetOptions]?: [number, number] } = {
  thermostats: [0, 100_000],
  locks: [0, 100_000],
  durationS: [0, 86_400],
  tokenTtlS: [1, 86_400],
  serviceTokenTtlS: [1, 86_400],
  rogue: [0, 10_000],
  tamper: [0, 10_000],
  telemetryIntervalS: [1, 86_400],
  seed: [0, 2 ** 32 - 1],
  commandTimeoutMs: [1, 600_000],
  drainTimeoutMs: [0, 600_000],
  connectTimeoutMs: [1, 600_000],
  gcp: [0, 100_000],
};
const RATE_RANGES: { [K in keyof FleetOptions]?: [number, number] } = {
  rampPerS: [0.01, 100_000],
  commandsPerS: [0, 10_000],
};

/**
 * Applies defaults and validates; caller misuse throws one TypeError naming every bad setting.
 *
 * @example
 * ```ts
 * const options = resolveFleetOptions({ httpUrl, mqttUrl, adminToken, thermostats: 20, locks: 20, tokenTtlS: 5 });
 * ```
 */
export function resolveFleetOptions(input: Required & Partial<FleetOptions>): Readonly<FleetOptions> {
  const o: FleetOptions = { ...FLEET_DEFAULTS, ...input };
  const problems: string[] = [];
  for (const key of ['httpUrl', 'mqttUrl'] as const) {
    try {
      new URL(o[key]);
    } catch {
      problems.push(`${key} must be an absolute URL`);
    }
  }
  if (typeof o.adminToken !== 'string' || o.adminToken.length === 0) problems.push('adminToken is required');
  for (const [key, [min, max]] of Object.entries(INTEGER_RANGES) as [keyof FleetOptions, [number, number]][]) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) problems.push(`${key} must be an integer in ${min}..${max}`);
  }
  for (const [key, [min, max]] of Object.entries(RATE_RANGES) as [keyof FleetOptions, [number, number]][]) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) problems.push(`${key} must be a number in ${min}..${max}`);
  }
  if (typeof o.cleanup !== 'boolean') problems.push('cleanup must be a boolean');
  if (typeof o.gcpProject !== 'string' || o.gcpProject.length === 0) problems.push('gcpProject must be a Google Cloud project id');
  if (typeof o.signed !== 'boolean') problems.push('signed must be a boolean');
  if (o.signed === true && o.gcp > 0) problems.push('signed needs gcp 0 (Cloud IoT Core devices do not sign their messages)');
  if (o.tamper > 0 && o.signed !== true) problems.push('tamper needs signed (the rogue alters signed messages)');
  if (o.tamper > 0 && o.thermostats + o.locks < 2) problems.push('tamper needs at least 2 devices (a copy is moved to another device)');
  if (o.thermostats + o.locks + o.gcp === 0 && problems.length === 0) problems.push('thermostats + locks + gcp must be at least 1');
  if (o.rogue > 0 && o.thermostats + o.locks < 2) problems.push('rogue needs at least 2 native devices to impersonate');
  if (problems.length > 0) throw new TypeError(`invalid fleet options: ${problems.join('; ')}`);
  return Object.freeze(o);
}
