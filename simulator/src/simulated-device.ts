/**
 * One simulated device on the wire: a device model bound to an SDK `DeviceClient`. Model outputs
 * become telemetry (with a per-device sequence number), events and state reports; commands and
 * config from the cloud go to the model; its replies go back through the SDK.
 */
import type { KeyObject } from 'node:crypto';
import { CommandError, DeviceClient, isDeviceClientError } from '@latchkey/device-sdk';
import type { DeviceKind, DeviceModel, DeviceOutput } from './devices/device-model.ts';
import { LOCK_COMMANDS } from './devices/lock.ts';
import { THERMOSTAT_COMMANDS } from './devices/thermostat.ts';

/** Fleet-wide counters every device adds to. */
export interface FleetCounters {
  /** Telemetry and event messages handed to the SDK (QoS 1). */
  telemetrySent: number;
  /** Publishes (telemetry, events, state) not yet settled. */
  pendingPublishes: number;
  /** Publishes the SDK rejected (queue overflow, closed, ...). */
  publishFailures: number;
  /** Refused connects of the fleet's own devices (CONNACK 2, 4 or 5). */
  authFailures: number;
  /** Why devices failed to connect: error code → count. */
  connectFailures: Map<string, number>;
}

export function newCounters(): FleetCounters {
  return { telemetrySent: 0, pendingPublishes: 0, publishFailures: 0, authFailures: 0, connectFailures: new Map() };
}

/** protocol.md §MQTT CONNECT: the refusals that mean "these credentials are not accepted". */
export const AUTH_REFUSALS = ['bad_credentials', 'not_authorized', 'identifier_rejected'] as const;

export interface DeviceConnectOptions {
  brokerUrl: string;
  audience: string;
  tokenTtlS: number;
  connectTimeoutMs: number;
  clock: () => number;
  /** Sign every message: telemetry, events, state, command replies (protocol.md §Signed messages). */
  signed?: boolean;
}

const COMMANDS: Record<DeviceKind, readonly string[]> = { thermostat: THERMOSTAT_COMMANDS, lock: LOCK_COMMANDS };

/**
 * A device of the fleet.
 *
 * @example
 * ```ts
 * const device = new SimulatedDevice('sim-1a2b3c-t00001', new Thermostat({ seed: 1 }), pair.privateKey, counters);
 * if (await device.connect({ brokerUrl, audience: 'latchkey', tokenTtlS: 60, connectTimeoutMs: 30_000, clock: Date.now })) device.step(Date.now());
 * ```
 */
export class SimulatedDevice {
  readonly dialect = 'latchkey';
  readonly id: string;
  readonly model: DeviceModel;
  readonly privateKey: KeyObject;
  readonly #counters: FleetCounters;
  #client: DeviceClient | null = null;
  #seq = 0;
  #lastStepAt = 0;
  /** Set once subscribed and the first state is reported: only then does the model run. */
  #ready = false;
  #clock: () => number = Date.now;
  /** CONNECT to CONNACK 0 (token minting included), ms; null until connected. */
  connectLatencyMs: number | null = null;
  /** The error code that stopped this device, if any. */
  failure: string | null = null;

  constructor(id: string, model: DeviceModel, privateKey: KeyObject, counters: FleetCounters) {
    this.id = id;
    this.model = model;
    this.privateKey = privateKey;
    this.#counters = counters;
  }

  get kind(): DeviceKind {
    return this.model.kind;
  }

  /** True while the device's client has a live session. */
  get online(): boolean {
    return this.#client !== null && this.#client.connected;
  }

  /** True from a completed connect (subscriptions included) until the client ends. */
  get active(): boolean {
    return this.#ready && this.failure === null;
  }

  /** The client's token refreshes and unplanned reconnects so far. */
  get stats(): { tokenRefreshes: number; reconnects: number } {
    const s = this.#client?.stats;
    return { tokenRefreshes: s?.tokenRefreshes ?? 0, reconnects: s?.reconnects ?? 0 };
  }

  /** Connects, subscribes to its commands and config, reports its state. Resolves true when live. */
  async connect(o: DeviceConnectOptions): Promise<boolean> {
    this.#clock = o.clock;
    const started = o.clock();
    let client: DeviceClient;
    try {
      client = await DeviceClient.connect({
        deviceId: this.id,
        brokerUrl: o.brokerUrl,
        privateKey: this.privateKey,
        audience: o.audience,
        tokenTtlSeconds: o.tokenTtlS,
        connectTimeoutMs: o.connectTimeoutMs,
        clock: o.clock,
        signMessages: o.signed === true,
      });
    } catch (err) {
      this.#fail(err);
      return false;
    }
    this.connectLatencyMs = o.clock() - started;
    this.#client = client;
    client.on('error', () => {}); // the ending error also arrives on 'close'
    client.on('close', (err) => {
      if (err !== undefined && this.failure === null) this.#fail(err);
    });
    try {
      await Promise.all([
        ...COMMANDS[this.kind].map((name) => client.onCommand(name, (params) => this.#command(name, params))),
        client.onConfig((config) => this.#publish(this.model.configure(config).outputs)),
      ]);
    } catch (err) {
      // Connected but deaf to commands or config: not a working device, so not counted as connected.
      this.connectLatencyMs = null;
      this.#fail(err);
      await client.close();
      return false;
    }
    this.#publish([{ type: 'state', state: this.model.state() }]);
    this.#lastStepAt = o.clock();
    this.#ready = true;
    return true;
  }

  /** Advances the model to `now` and publishes what it produced. */
  step(now: number): void {
    if (!this.active) return;
    const dt = Math.max(0, now - this.#lastStepAt);
    this.#lastStepAt = now;
    this.#publish(this.model.step(dt));
  }

  /** Closes the client (waits for unacknowledged publishes, up to the SDK's bound). */
  async close(): Promise<void> {
    const client = this.#client;
    if (client === null) return;
    await client.close();
  }

  #command(name: string, params: unknown): unknown {
    const { reply, outputs } = this.model.command(name, params);
    this.#publish(outputs);
    // protocol.md §Topics: {"ok":false,"error":"…"} — the SDK sends a CommandError's message as `error`.
    if (!reply.ok) throw new CommandError(reply.error);
    return reply.result;
  }

  #publish(outputs: readonly DeviceOutput[]): void {
    const client = this.#client;
    if (client === null) return;
    for (const out of outputs) {
      if (out.type === 'state') {
        this.#track(() => client.reportState(out.state), false);
      } else {
        const ts = this.#clock();
        const seq = ++this.#seq;
        if (out.type === 'telemetry') this.#track(() => client.publishTelemetry({ seq, ts, ...out.data }, { qos: 1 }), true);
        else this.#track(() => client.publishTelemetry({ seq, ts, event: out.name, ...out.data }, { subtopic: 'events', qos: 1 }), true);
      }
    }
  }

  #track(publish: () => Promise<void>, isTelemetry: boolean): void {
    const c = this.#counters;
    if (isTelemetry) c.telemetrySent++;
    c.pendingPublishes++;
    const settle = (failed: boolean) => {
      c.pendingPublishes--;
      if (failed) c.publishFailures++;
    };
    try {
      publish().then(() => settle(false), () => settle(true));
    } catch {
      settle(true);
    }
  }

  #fail(err: unknown): void {
    const code = isDeviceClientError(err) ? err.code : 'internal_error';
    this.failure = code;
    if ((AUTH_REFUSALS as readonly string[]).includes(code)) this.#counters.authFailures++;
    this.#counters.connectFailures.set(code, (this.#counters.connectFailures.get(code) ?? 0) + 1);
  }
}
