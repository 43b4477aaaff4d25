/**
 * A simulated device speaking the Cloud IoT Core dialect
 * (docs/protocol.md §Cloud IoT Core compatibility), as firmware written for Cloud IoT Core does: mqtt.js with the path client id,
 * username `unused`, a `{iat, exp, aud}` token signed with node:crypto, events on
 * `/devices/{id}/events`, state on `/devices/{id}/state`, config (raw bytes) from
 * `/devices/{id}/config`, commands from `/devices/{id}/commands/#`. Like Google's samples it re-mints
 * its token before it expires and reconnects (a clean session). What it publishes while between two
 * connections waits in its own queue, so nothing is lost.
 */
import type { KeyObject } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceKind, DeviceModel, DeviceOutput } from '../devices/device-model.ts';
import type { DeviceConnectOptions, FleetCounters } from '../simulated-device.ts';
import type { GcpBinding, GcpIdentity } from './gcp-fleet.ts';
import { mintGcpToken } from './gcp-token.ts';

/** The same options a native device connects with (its audience is unused: the token's `aud` is the project). */
export type GcpConnectOptions = Omit<DeviceConnectOptions, 'audience'> & { audience?: string };

interface Outgoing {
  topic: string;
  payload: Buffer;
  telemetry: boolean;
}

const RECONNECT_DELAY_MS = 500;
/** A device that cannot reconnect this many times in a row has failed. */
const MAX_REOPEN_ATTEMPTS = 10;

/**
 * @example
 * ```ts
 * const d = new GcpSimulatedDevice(identity, model, counters);
 * if (await d.connect({ brokerUrl, binding, tokenTtlS: 60, connectTimeoutMs: 30_000, clock: Date.now })) d.step(Date.now());
 * ```
 */
export class GcpSimulatedDevice {
  readonly dialect = 'gcp';
  readonly id: string;
  readonly model: DeviceModel;
  readonly identity: GcpIdentity;
  readonly binding: GcpBinding;
  readonly #counters: FleetCounters;
  #reopenAttempts = 0;
  #client: MqttClient | null = null;
  #o: GcpConnectOptions | null = null;
  #tokenIssuedAt = 0;
  #closing = false;
  #ready = false;
  #seq = 0;
  #lastStepAt = 0;
  readonly #queue: Outgoing[] = [];
  #tokenRefreshes = 0;
  #reconnects = 0;
  /** Commands received (subfolder = the command name), for the run's checks. */
  commandsReceived = 0;
  /** Config messages received. */
  configsReceived = 0;
  connectLatencyMs: number | null = null;
  failure: string | null = null;

  constructor(identity: GcpIdentity, binding: GcpBinding, model: DeviceModel, counters: FleetCounters) {
    this.id = identity.id;
    this.identity = identity;
    this.binding = binding;
    this.model = model;
    this.#counters = counters;
  }

  get kind(): DeviceKind {
    return this.model.kind;
  }

  get privateKey(): KeyObject {
    return this.identity.privateKey;
  }

  get online(): boolean {
    return this.#client !== null && this.#client.connected;
  }

  get active(): boolean {
    return this.#ready && this.failure === null;
  }

  get stats(): { tokenRefreshes: number; reconnects: number } {
    return { tokenRefreshes: this.#tokenRefreshes, reconnects: this.#reconnects };
  }

  /** Telemetry and event messages this device published (its last sequence number). */
  get telemetrySent(): number {
    return this.#seq;
  }

  /** Connects (first token minted inside), subscribes, reports state; resolves true when live. */
  async connect(o: GcpConnectOptions): Promise<boolean> {
    this.#o = o;
    const started = o.clock();
    const ok = await this.#session();
    if (!ok) return false;
    this.connectLatencyMs = o.clock() - started;
    this.#publish([{ type: 'state', state: this.model.state() }]);
    this.#lastStepAt = o.clock();
    this.#ready = true;
    return true;
  }

  /** Advances the model; re-mints the token and reconnects when it is about to expire. */
  step(now: number): void {
    if (!this.active || this.#o === null) return;
    const ttlMs = this.#o.tokenTtlS * 1000;
    if (this.#client !== null && now - this.#tokenIssuedAt >= ttlMs - Math.min(5_000, ttlMs / 10)) this.#refresh();
    const dt = Math.max(0, now - this.#lastStepAt);
    this.#lastStepAt = now;
    this.#publish(this.model.step(dt));
  }

  async close(): Promise<void> {
    this.#closing = true;
    const c = this.#client;
    this.#client = null;
    await c?.endAsync().catch(() => undefined);
  }

  /** One MQTT session: connect with a fresh token, subscribe to config and commands, send what waited. */
  #session(): Promise<boolean> {
    const o = this.#o as GcpConnectOptions;
    const b = this.binding;
    this.#tokenIssuedAt = o.clock();
    const password = mintGcpToken({ privateKey: this.identity.privateKey, algorithm: this.identity.algorithm, project: b.project, nowS: Math.floor(this.#tokenIssuedAt / 1000), ttlS: o.tokenTtlS });
    const client = mqtt.connect(o.brokerUrl, {
      clientId: `projects/${b.project}/locations/${b.location}/registries/${b.registry}/devices/${this.identity.numId}`,
      username: 'unused',
      password,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs,
    });
    this.#client = client;
    return new Promise((resolve) => {
      client.once('connect', () => {
        client.on('message', (topic, payload) => this.#onMessage(topic, payload));
        client.on('close', () => this.#onClose(client));
        // one filter per SUBSCRIBE (architecture.md §Library facts); the samples' QoS: config 1, commands 0
        void Promise.all([
          client.subscribeAsync(`/devices/${this.id}/config`, { qos: 1 }),
          client.subscribeAsync(`/devices/${this.id}/commands/#`, { qos: 1 }),
        ]).then(
          () => {
            this.#flush();
            resolve(true);
          },
          (err: unknown) => {
            this.#fail(err);
            resolve(false);
          },
        );
      });
      client.once('error', (err) => {
        if (client.connected) return;
        this.#fail(err);
        void client.endAsync(true).catch(() => undefined);
        resolve(false);
      });
    });
  }

  /** Google's samples: a token about to expire means disconnect, re-mint, reconnect. */
  #refresh(): void {
    const old = this.#client;
    if (old === null) return;
    this.#client = null;
    this.#tokenRefreshes++;
    // end() waits for the QoS 1 publishes in flight; later ones wait in the queue
    void old.endAsync().then(() => this.#reopen());
  }

  #onClose(client: MqttClient): void {
    if (this.#client !== client || this.#closing) return;
    this.#client = null;
    this.#reconnects++;
    setTimeout(() => this.#reopen(), RECONNECT_DELAY_MS);
  }

  #reopen(): void {
    if (this.#closing) return;
    void this.#session().then((ok) => {
      this.#reopenAttempts = ok ? 0 : this.#reopenAttempts + 1;
      if (!ok && !this.#closing && this.#reopenAttempts < MAX_REOPEN_ATTEMPTS) {
        this.failure = null; // not failed yet: trying again
        setTimeout(() => this.#reopen(), RECONNECT_DELAY_MS);
      }
    });
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (topic === `/devices/${this.id}/config`) {
      this.configsReceived++;
      if (payload.length === 0) return;
      let config: unknown;
      try {
        config = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
      this.#publish(this.model.configure(config).outputs);
      return;
    }
    // commands: /devices/{id}/commands/{name}, the body the JSON params; such firmware never replies
    const name = topic.split('/')[4];
    if (name === undefined) return;
    this.commandsReceived++;
    let params: unknown = {};
    try {
      params = payload.length === 0 ? {} : JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    this.#publish(this.model.command(name, params).outputs);
  }

  #publish(outputs: readonly DeviceOutput[]): void {
    for (const out of outputs) {
      if (out.type === 'state') {
        this.#send({ topic: `/devices/${this.id}/state`, payload: Buffer.from(JSON.stringify(out.state)), telemetry: false });
      } else {
        const data = out.type === 'telemetry' ? out.data : { event: out.name, ...out.data };
        const body = { seq: ++this.#seq, ts: (this.#o?.clock ?? Date.now)(), ...data };
        this.#send({ topic: `/devices/${this.id}/events${out.type === 'event' ? '/events' : ''}`, payload: Buffer.from(JSON.stringify(body)), telemetry: true });
      }
    }
  }

  #send(m: Outgoing): void {
    if (m.telemetry) this.#counters.telemetrySent++;
    this.#counters.pendingPublishes++;
    this.#queue.push(m);
    this.#flush();
  }

  #flush(): void {
    const client = this.#client;
    while (client !== null && client.connected && this.#queue.length > 0) {
      const m = this.#queue.shift() as Outgoing;
      client.publishAsync(m.topic, m.payload, { qos: 1 }).then(
        () => this.#counters.pendingPublishes--,
        () => {
          // not acknowledged on this connection: sent again on the next one
          this.#queue.unshift(m);
        },
      );
    }
  }

  #fail(err: unknown): void {
    const code = (err as { code?: unknown }).code;
    this.failure = typeof code === 'number' ? `connack_${code}` : 'connect_failed';
    this.#counters.connectFailures.set(this.failure, (this.#counters.connectFailures.get(this.failure) ?? 0) + 1);
    if (typeof code === 'number' && code >= 2) this.#counters.authFailures++;
  }
}
