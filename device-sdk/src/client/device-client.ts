import { EventEmitter } from 'node:events';
import { CommandRouter, type CommandHandler } from '../messaging/command-router.ts';
import { MessageSigner } from '../messaging/message-signer.ts';
import { messageAudience } from '../protocol/signed-message.ts';
import { deviceIdOption, openSession, type ClientSigning, type ConnectOptions } from './connect-options.ts';
import { forwardEvents, type ClientEvents } from './forward-events.ts';
import { deviceTopics } from '../protocol/index.ts';
import type { Session, SessionStats } from '../session/session.ts';
import { encodePayload } from '../messaging/encode-payload.ts';

export { encodePayload };

/** Options of {@link DeviceClient.connect}. */
export interface DeviceClientOptions extends ConnectOptions {
  /** The device id: MQTT client id and token `sub` (protocol.md §MQTT CONNECT). */
  deviceId: string;
  /**
   * Sign every telemetry, state and command-reply message with the device key (protocol.md
   * §Signed messages) unless a call says `signed: false`. Default false: each call decides (`signed: true`).
   */
  signMessages?: boolean;
}

/** Options of {@link DeviceClient.publishTelemetry}. */
export interface TelemetryOptions {
  /** Extra topic levels: `devices/{id}/telemetry/{subtopic}`. No wildcards, no empty levels. */
  subtopic?: string;
  /** Default 1 (at least once). */
  qos?: 0 | 1;
  /** Publish a signed message (protocol.md §Signed messages). Default: the client's `signMessages`. */
  signed?: boolean;
}

/** Options of {@link DeviceClient.reportState} and {@link DeviceClient.onCommand} (for its replies). */
export interface SigningOptions {
  /** Sign the message (protocol.md §Signed messages). Default: the client's `signMessages`. */
  signed?: boolean;
}

/** Receives a config delivered on `devices/{id}/config`. */
export type ConfigHandler = (config: unknown, meta: { version: number }) => void | Promise<void>;

export type { ClientEvents } from './forward-events.ts';

const SUBTOPIC_LEVEL = /^[^+#\u0000]+$/;

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
  readonly #signer: MessageSigner;
  readonly #signByDefault: boolean;
  /** commands whose replies are signed */
  readonly #signedReplies = new Set<string>();
  #configHandler: ConfigHandler | null = null;
  #configVersion = Number.NEGATIVE_INFINITY;

  private constructor(deviceId: string, session: Session, signing: ClientSigning, signByDefault: boolean) {
    super();
    this.deviceId = deviceId;
    this.#session = session;
    this.#topics = deviceTopics(deviceId);
    this.#signByDefault = signByDefault;
    this.#signer = new MessageSigner({ deviceId, signer: signing.signer, kid: signing.kid, aud: messageAudience(signing.audience) }, signing.now);
    this.#commands = new CommandRouter(
      (commandId, reply) => this.#session.publish(this.#topics.reply(commandId), reply, 1),
      async (name, commandId, reply) => (this.#signedReplies.has(name) ? this.#signer.sign(this.#topics.reply(commandId), reply) : reply),
    );
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
    const signByDefault = signedOption(o.signMessages, false, 'signMessages');
    const { session, signing } = await openSession(o, { clientId: deviceId, subject: deviceId });
    return new DeviceClient(deviceId, session, signing, signByDefault);
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
   * and bytes as they are; with `signed: true`, as a message signed with the device key
   * (protocol.md §Signed messages). Resolves when the broker acknowledged it (QoS 1) or it was sent
   * (QoS 0); while disconnected it waits in the bounded offline queue.
   *
   * @example
   * ```ts
   * await client.publishTelemetry({ celsius: 21.5 }, { subtopic: 'living-room', signed: true });
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
    return this.#publish(topic, encodePayload(data), o.qos ?? 1, signedOption(o.signed, this.#signByDefault));
  }

  /**
   * Reports the device's current state (JSON) on `devices/{id}/state`, QoS 1; the registry keeps
   * the last one (`GET /v1/devices/{id}/state`). `signed: true` signs it.
   *
   * @example
   * ```ts
   * await client.reportState({ locked: true, battery: 0.82 }, { signed: true });
   * ```
   */
  reportState(state: unknown, o: SigningOptions = {}): Promise<void> {
    const json = JSON.stringify(state);
    if (json === undefined) throw new TypeError('state must be JSON-serializable');
    return this.#publish(this.#topics.state, Buffer.from(json, 'utf8'), 1, signedOption(o.signed, this.#signByDefault));
  }

  /**
   * Handles command `name` (`devices/{id}/commands/{name}`, payload `{"id","params"}`). The
   * handler's return value is replied as `{"ok":true,"result":…}` on `devices/{id}/replies/{id}`;
   * a thrown {@link CommandError} as `{"ok":false,"error":message}`, any other throw as
   * `{"ok":false,"error":"command failed"}` (details stay on the device, via `handler-error`).
   * A redelivered command (QoS 1) is not run twice: its reply is sent again. `signed: true` signs
   * the replies (a redelivered command's reply is re-sent byte for byte, sequence number included).
   *
   * @example
   * ```ts
   * await client.onCommand('unlock', async (params) => { await door.unlock(); return { unlocked: true }; }, { signed: true });
   * ```
   */
  async onCommand<P = unknown>(name: string, handler: CommandHandler<P>, o: SigningOptions = {}): Promise<void> {
    const signed = signedOption(o.signed, this.#signByDefault);
    this.#commands.register(name, handler as CommandHandler);
    if (signed) this.#signedReplies.add(name);
    try {
      await this.#session.subscribe(this.#topics.command(name), 1, (topic, payload) =>
        this.#commands.dispatch(name, payload, (err) => this.emit('handler-error', err, topic)),
      );
    } catch (err) {
      this.#commands.unregister(name); // a refused or closed subscription leaves the name free
      this.#signedReplies.delete(name);
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

  /**
   * Unsigned: to the session now. Signed: the sequence number is taken now and the signed message
   * goes to the session after every message signed before it, so they leave in publish order.
   */
  #publish(topic: string, payload: Buffer, qos: 0 | 1, signed: boolean): Promise<void> {
    if (!signed) return this.#session.publish(topic, payload, qos);
    return this.#signer.sign(topic, payload).then((jws) => this.#session.publish(topic, jws, qos));
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

/** A `signed` option: a boolean, or the default when absent (caller misuse is a TypeError). */
function signedOption(value: unknown, dflt: boolean, name = 'signed'): boolean {
  if (value === undefined) return dflt;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return value;
}
