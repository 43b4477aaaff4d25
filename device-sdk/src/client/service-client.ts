import { EventEmitter } from 'node:events';
import { openSession, type ClientSigning, type ConnectOptions } from './connect-options.ts';
import { RegistryKeySource } from '../http/registry-key-source.ts';
import { ReplayWindow } from '../verify/replay-window.ts';
import { verifyDeviceMessage, type VerifiedDeviceMessage } from '../verify/verify-device-message.ts';
import { encodePayload } from '../messaging/encode-payload.ts';
import { forwardEvents, type ClientEvents } from './forward-events.ts';
import { serviceClientId, servicePrincipal } from '../protocol/index.ts';
import type { Session, SessionStats } from '../session/session.ts';
import type { MessageHandler } from '../messaging/subscription-table.ts';

/** Options of {@link ServiceClient.connect}. */
export interface ServiceClientOptions extends ConnectOptions {
  /** The service account name (`^[a-z][a-z0-9-]{2,63}$`); the token `sub` is `svc:{name}`. */
  serviceName: string;
  /** Instance label for several connections of one account: client id `svc:{name}:{instance}`. */
  instance?: string;
}

/** What {@link ServiceClient.verifyDeviceMessage} needs: the account, its signer, the API. */
interface VerifierSetup {
  serviceName: string;
  signing: ClientSigning;
  provisioningUrl: string | undefined;
}

/** Options of {@link ServiceClient.publish}. */
export interface ServicePublishOptions {
  /** Default 1. */
  qos?: 0 | 1;
  /** Default false. */
  retain?: boolean;
}

/**
 * A backend application's MQTT connection as a service account (protocol.md §Service accounts):
 * same token, refresh and reconnect machinery as {@link DeviceClient}, confined to the topic filters
 * of its ACL. Each `subscribe` is its own SUBSCRIBE, so a refused filter never takes others down.
 *
 * @example
 * ```ts
 * const svc = await ServiceClient.connect({ serviceName: 'dashboard', brokerUrl, privateKey });
 * await svc.subscribe('devices/+/telemetry/#', (topic, payload) => console.log(topic, payload.toString()));
 * await svc.publish('devices/thermo-1/commands/reboot', { id: 'c1', params: {} });
 * ```
 */
export class ServiceClient extends EventEmitter<ClientEvents> {
  /** The MQTT client id: `svc:{name}` or `svc:{name}:{instance}`. */
  readonly clientId: string;
  readonly #session: Session;
  readonly #setup: VerifierSetup;
  #verifier: { keys: RegistryKeySource; replay: ReplayWindow } | null = null;

  private constructor(clientId: string, session: Session, setup: VerifierSetup) {
    super();
    this.clientId = clientId;
    this.#session = session;
    this.#setup = setup;
    forwardEvents(session, this);
  }

  /**
   * Connects as a service account; resolves once the broker accepted the session, rejects with a
   * coded {@link DeviceClientError} (`bad_credentials`, `not_authorized`, `connect_timeout`, …).
   *
   * @example
   * ```ts
   * const svc = await ServiceClient.connect({ serviceName: 'rules', instance: '2', brokerUrl, privateKey });
   * ```
   */
  static async connect(o: ServiceClientOptions): Promise<ServiceClient> {
    const clientId = serviceClientId(o?.serviceName, o?.instance); // TypeError for a bad name or instance
    const subject = servicePrincipal(o.serviceName);
    const { session, signing } = await openSession(o, { clientId, subject });
    return new ServiceClient(clientId, session, { serviceName: o.serviceName, signing, provisioningUrl: o.provisioningUrl });
  }

  /** True while a session is up. */
  get connected(): boolean {
    return this.#session.connected;
  }

  /** Counters: `tokenRefreshes`, `reconnects`, `connectAttempts`, `dropped`, `queued`, `inflight`. */
  get stats(): SessionStats {
    return this.#session.stats;
  }

  /**
   * Subscribes one filter (QoS 1 by default); resolves on SUBACK, rejects with `subscribe_denied`
   * when the filter is outside the account's ACL. Kept across reconnects.
   *
   * @example
   * ```ts
   * await svc.subscribe('devices/+/replies/+', (topic, payload) => onReply(topic, JSON.parse(payload.toString())));
   * ```
   */
  subscribe(filter: string, handler: MessageHandler, o: { qos?: 0 | 1 } = {}): Promise<void> {
    return this.#session.subscribe(filter, o.qos ?? 1, handler);
  }

  /**
   * Stops delivering `filter` (the broker is told now, or after the next reconnect).
   *
   * @example
   * ```ts
   * svc.unsubscribe('devices/+/telemetry/#');
   * ```
   */
  unsubscribe(filter: string): void {
    this.#session.unsubscribe(filter);
  }

  /**
   * Publishes to a topic inside the account's publish ACL. Objects go as JSON, strings and bytes as
   * they are. Resolves when acknowledged (QoS 1). A publish outside the ACL makes the broker close
   * the connection (protocol.md §Topics); the client then reconnects.
   *
   * @example
   * ```ts
   * await svc.publish('devices/lock-7/config', { version: 3, config: { autoLock: true } }, { retain: true });
   * ```
   */
  publish(topic: string, payload: unknown, o: ServicePublishOptions = {}): Promise<void> {
    return this.#session.publish(topic, encodePayload(payload), o.qos ?? 1, o.retain ?? false);
  }

  /**
   * Verifies a device's signed message as it arrived on `topic` (protocol.md §Signed messages):
   * the device's key history comes from `GET /v1/devices/{id}/keys` at `provisioningUrl`, as this
   * service account (its own key, no admin token), cached and refreshed on rotation; one replay
   * window per client. Rejects with a `DeviceMessageError` (see `verifyDeviceMessage`).
   *
   * @example
   * ```ts
   * await svc.subscribe('devices/+/telemetry/#', async (topic, payload) => {
   *   const m = await svc.verifyDeviceMessage(topic, payload);
   *   console.log(m.deviceId, m.seq, JSON.parse(m.payload.toString()));
   * });
   * ```
   */
  verifyDeviceMessage(topic: string, payload: Uint8Array | string): Promise<VerifiedDeviceMessage> {
    if (this.#verifier === null) {
      const { serviceName, signing, provisioningUrl } = this.#setup;
      if (provisioningUrl === undefined) throw new TypeError('verifyDeviceMessage needs the provisioningUrl connect option');
      const keys = new RegistryKeySource({ provisioningUrl, serviceName, sign: signing.signer, kid: signing.kid, audience: signing.audience, clock: signing.now });
      this.#verifier = { keys, replay: new ReplayWindow() };
    }
    return verifyDeviceMessage(topic, payload, { ...this.#verifier, audience: this.#setup.signing.audience, clock: this.#setup.signing.now });
  }

  /**
   * Closes the connection after (at most 5 s of) waiting for unacknowledged publishes.
   *
   * @example
   * ```ts
   * await svc.close();
   * ```
   */
  close(): Promise<void> {
    return this.#session.close();
  }
}
