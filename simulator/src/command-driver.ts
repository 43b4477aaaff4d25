/**
 * Backend commands at a steady rate through the HTTP API (`POST /v1/devices/{id}/commands`),
 * like a dashboard or rules engine would send them, with their round-trip latency measured.
 */
import type { Random } from './random.ts';
import { SimulatorError, type ProvisioningApi } from './provisioning-api.ts';
import type { FleetDevice } from './fleet-run.ts';

export interface CommandDriverOptions {
  api: ProvisioningApi;
  /** Devices to command; only those online at the moment are picked. */
  devices: readonly FleetDevice[];
  ratePerS: number;
  timeoutMs: number;
  rng: Random;
  clock: () => number;
}

/** A device is "offline" for a few milliseconds while it reconnects with a fresh token. */
const OFFLINE_RETRIES = 5;
const OFFLINE_RETRY_DELAY_MS = 200;
const TICK_MS = 50;

/**
 * A command for a device of `kind`, chosen with `rng`.
 *
 * @example
 * ```ts
 * commandFor('lock', rng) // { name: 'unlock', params: {} }
 * ```
 */
export function commandFor(kind: 'thermostat' | 'lock', rng: Random): { name: string; params: Record<string, unknown> } {
  if (kind === 'lock') return { name: rng.chance(0.5) ? 'lock' : 'unlock', params: {} };
  if (rng.chance(0.7)) return { name: 'setSetpoint', params: { setpoint: Math.round((18 + rng.next() * 6) * 2) / 2 } };
  const modes = ['heat', 'cool', 'auto'] as const;
  return { name: 'setMode', params: { mode: modes[Math.floor(rng.next() * modes.length)] } };
}

/**
 * Sends commands at `ratePerS` from `start()` until `stop()`.
 * `ok` counts commands the device answered (whatever its verdict: `door_open` is an answer);
 * `failed` those that got no answer (`device_offline` after retries, `command_timeout`, errors).
 *
 * @example
 * ```ts
 * const driver = new CommandDriver({ api, devices, ratePerS: 5, timeoutMs: 10_000, rng, clock: Date.now });
 * driver.start();
 * ... ; await driver.stop();
 * ```
 */
export class CommandDriver {
  readonly #o: CommandDriverOptions;
  #timer: NodeJS.Timeout | null = null;
  #startedAt = 0;
  #inFlight = new Set<Promise<void>>();
  sent = 0;
  ok = 0;
  failed = 0;
  readonly latenciesMs: number[] = [];
  /** Why commands failed: code → count. */
  readonly failures = new Map<string, number>();

  constructor(o: CommandDriverOptions) {
    this.#o = o;
  }

  start(): void {
    if (this.#timer !== null || this.#o.ratePerS <= 0) return;
    this.#startedAt = this.#o.clock();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Stops sending and waits for the commands in flight. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.all(this.#inFlight);
  }

  #tick(): void {
    const due = Math.floor(((this.#o.clock() - this.#startedAt) / 1000) * this.#o.ratePerS) - this.sent;
    for (let i = 0; i < due; i++) {
      const online = this.#o.devices.filter((d) => d.online);
      if (online.length === 0) return;
      const device = online[Math.floor(this.#o.rng.next() * online.length)]!;
      const p = this.#send(device);
      this.#inFlight.add(p);
      void p.finally(() => this.#inFlight.delete(p));
    }
  }

  async #send(device: FleetDevice): Promise<void> {
    const { name, params } = commandFor(device.kind, this.#o.rng);
    this.sent++;
    const started = this.#o.clock();
    for (let attempt = 0; ; attempt++) {
      try {
        // a Cloud IoT Core device gets the command name as the subfolder and the params as data; it never replies
        if (device.dialect === 'gcp') await this.#o.api.sendGcpCommand(device.id, name, params, this.#o.timeoutMs);
        else await this.#o.api.sendCommand(device.id, name, params, this.#o.timeoutMs);
        this.ok++;
        this.latenciesMs.push(this.#o.clock() - started);
        return;
      } catch (err) {
        const code = err instanceof SimulatorError ? err.code : 'internal_error';
        if (code === 'device_offline' && attempt < OFFLINE_RETRIES && device.active) {
          await new Promise((r) => setTimeout(r, OFFLINE_RETRY_DELAY_MS));
          continue;
        }
        this.failed++;
        this.failures.set(code, (this.failures.get(code) ?? 0) + 1);
        return;
      }
    }
  }
}
