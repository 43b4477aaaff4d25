import { EventEmitter } from 'node:events';
import { CommandRouter, type CommandHandler } from '../messaging/command-router.ts';
import { deviceIdOption, openSession, type ConnectOptions } from './connect-options.ts';
import { forwardEvents, type ClientEvents } from './forward-events.ts';
import { deviceTopics } from '../protocol/index.ts';
import type { Session, SessionStats } from '../session/session.ts';

/** Options of {@link DeviceClient.connect}. */
export interface DeviceClientOptions extends ConnectOptions {
  /** The device id: MQTT client id and token `sub` (protocol.md §MQTT CONNECT). */
  deviceId: string;
}

/** Options of {@link DeviceClient.publishTelemetry}. */
export interface TelemetryOptions {
  /** Extra topic levels: `devices/{id}/telemetry/{subtopic}`. No wildcards, no empty levels. */
  subtopic?: string;
  /** Default 1 (at least once). */
  qos?: 0 | 1;
}

/** Receives a config delivered on `devices/{id}/config`. */
export type ConfigHandler = (config: unknown, meta: { version: number }) => void | Promise<void>;

export type { ClientEvents } from './forward-events.ts';

const SUBTOPIC_LEVEL = /^[^+#\u0000]+$/;

/**
 * A payload as both clients put it on the wire: bytes and strings as they are, anything else as
 * JSON. Throws TypeError for what JSON cannot represent (`undefined`, a function).
 *
 * @example
 * ```ts
 * encodePayload({ celsius: 21.5 }).toString() // '{"celsius":21.5}'
 * ```
 */
export function encodePayload(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  const json = JSON.stringify(data);
  if (json === undefined) throw new TypeError('payload must be bytes, a string or JSON-serializable');
  return Buffer.from(json, 'utf8');
}

/**
 * A device's MQTT connection to latchkey: authenticates with short-lived ES256 tokens it mints and
 * refreshes itself, keeps one persistent session (QoS 1, nothing lost across token refreshes or
 * network failures), and speaks the device topics of protocol.md §Topics.
 *
 * Events: `connect` ({sessionPresent}), `offline`, `token-refresh` ({exp}), `error`
 * (a {@link DeviceClientError} that ended the client: `bad_credentials`, `not_authorized`,
 * `identifier_rejected`, `protocol_rejected`), `close` (the ending error, or undefined after
 * `close()`), `handler-error` (a command or config handler threw).
 *
 * @example
 * ```ts
 * const client = await DeviceClient.connect({
 *   deviceId: 'thermo-1',
 *   brokerUrl: 'mqtt://127.0.0.1:1883',
 *   privateKey: await loadPrivateKey('./device.key.pem'),
 * });
 * await client.onCommand<{ celsius: number }>('setSetpoint', async ({ celsius }) => ({ setpoint: celsius }));
 * await client.publishTelemetry({ celsius: 21.5 });
 * await client.close();
 * ```
 */
export class DeviceClient extends EventEmitter<ClientEvents> {
  /** The device id this client speaks for. */
  readonly deviceId: string;
  readonly #session: Session;
  readonly #topics: ReturnType<typeof deviceTopics>;
  readonly #commands: CommandRouter;
  #configHandler: ConfigHandler | null = null;
  #configVersion = Number.NEGATIVE_INFINITY;

  private constructor(deviceId: string, session: Session) {
    super();
    this.deviceId = deviceId;
    this.#session = session;
    this.#topics = deviceTopics(deviceId);
    this.#commands = new CommandRouter((commandId, reply) => this.#session.publish(this.#topics.reply(commandId), reply, 1));
    forwardEvents(session, this);
  }

  /**
   * Connects; resolves once the broker accepted the first session. Network failures are retried
   * with backoff until `connectTimeoutMs` (`connect_timeout`); CONNACK 2/4/5 reject at once with
   * `identifier_rejected` / `bad_credentials` / `not_authorized`.
   *
   * @example
   * ```ts
   * const client = await DeviceClient.connect({ deviceId: 'lock-7', brokerUrl, privateKey, provisioningUrl });
   * ```
   */
  static async connect(o: DeviceClientOptions): Promise<DeviceClient> {
    const deviceId = deviceIdOption(o?.deviceId);
    const session = await openSession(o, { clientId: deviceId, subject: deviceId });
    return new DeviceClient(deviceId, session);
  }

  /** True while a session is up (false while reconnecting or refreshing the token). */
  get connected(): boolean {
    return this.#session.connected;
  }

  /** Counters: `tokenRefreshes`, `reconnects`, `connectAttempts`, `dropped`, `queued`, `inflight`. */
  get stats(): SessionStats {
    return this.#session.stats;
  }

  /**
   * Publishes telemetry to `devices/{id}/telemetry[/{subtopic}]`. Objects are sent as JSON, strings
   * and bytes as they are. Resolves when the broker acknowledged it (QoS 1) or it was sent (QoS 0);
   * while disconnected it waits in the bounded offline queue.
   *
   * @example
   * ```ts
   * await client.publishTelemetry({ celsius: 21.5 }, { subtopic: 'living-room' });
   * ```
   */
  publishTelemetry(data: unknown, o: TelemetryOptions = {}): Promise<void> {
    let topic = this.#topics.telemetry;
    if (o.subtopic !== undefined) {
      if (typeof o.subtopic !== 'string' || !o.subtopic.split('/').every((l) => SUBTOPIC_LEVEL.test(l))) {
        throw new TypeError('subtopic must be non-empty topic levels without + or #');
      }
      topic += `/${o.subtopic}`;
    }
    return this.#session.publish(topic, encodePayload(data), o.qos ?? 1);
  }

  /**
   * Reports the device's current state (JSON) on `devices/{id}/state`, QoS 1; the registry keeps
   * the last one (`GET /v1/devices/{id}/state`).
   *
   * @example
   * ```ts
   * await client.reportState({ locked: true, battery: 0.82 });
   * ```
   */
  reportState(state: unknown): Promise<void> {
    const json = JSON.stringify(state);
    if (json === undefined) throw new TypeError('state must be JSON-serializable');
    return this.#session.publish(this.#topics.state, Buffer.from(json, 'utf8'), 1);
  }

  /**
   * Handles command `name` (`devices/{id}/commands/{name}`, payload `{"id","params"}`). The
   * handler's return value is replied as `{"ok":true,"result":…}` on `devices/{id}/replies/{id}`;
   * a thrown {@link CommandError} as `{"ok":false,"error":message}`, any other throw as
   * `{"ok":false,"error":"command failed"}` (details stay on the device, via `handler-error`).
   * A redelivered command (QoS 1) is not run twice: its reply is sent again.
   *
   * @example
   * ```ts
   * await client.onCommand('unlock', async (params) => { await door.unlock(); return { unlocked: true }; });
   * ```
   */
  async onCommand<P = unknown>(name: string, handler: CommandHandler<P>): Promise<void> {
    this.#commands.register(name, handler as CommandHandler);
    try {
      await this.#session.subscribe(this.#topics.command(name), 1, (topic, payload) =>
        this.#commands.dispatch(name, payload, (err) => this.emit('handler-error', err, topic)),
      );
    } catch (err) {
      this.#commands.unregister(name); // a refused or closed subscription leaves the name free
      throw err;
    }
  }

  /**
   * Receives the device config (`devices/{id}/config`, retained `{"version","config"}`): delivered
   * on subscribe and on every change. A version not newer than the last one seen is ignored.
   *
   * @example
   * ```ts
   * await client.onConfig((config, { version }) => applyConfig(config));
   * ```
   */
  async onConfig(handler: ConfigHandler): Promise<void> {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this.#configHandler !== null) throw new TypeError('onConfig was already called');
    this.#configHandler = handler;
    try {
      await this.#session.subscribe(this.#topics.config, 1, (_topic, payload) => this.#onConfigMessage(payload));
    } catch (err) {
      this.#configHandler = null;
      throw err;
    }
  }

  /**
   * Closes the connection: waits (up to 5 s) for unacknowledged publishes, sends DISCONNECT;
   * queued publishes reject with `closed`.
   *
   * @example
   * ```ts
   * process.on('SIGTERM', () => void client.close());
   * ```
   */
  close(): Promise<void> {
    return this.#session.close();
  }

  #onConfigMessage(payload: Buffer): void | Promise<void> {
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch {
      return; // an empty retained message (config cleared) or garbage: nothing to apply
    }
    const { version, config } = (msg ?? {}) as { version?: unknown; config?: unknown };
    if (typeof version !== 'number' || !Number.isFinite(version)) return;
    if (version <= this.#configVersion) return; // protocol.md §Topics: stale or redelivered
    this.#configVersion = version;
    return this.#configHandler?.(config, { version });
  }
}

