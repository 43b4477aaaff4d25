import { EventEmitter } from 'node:events';
import { openSession, type ConnectOptions } from './connect-options.ts';
import { encodePayload } from './device-client.ts';
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

  private constructor(clientId: string, session: Session) {
    super();
    this.clientId = clientId;
    this.#session = session;
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
    const session = await openSession(o, { clientId, subject });
    return new ServiceClient(clientId, session);
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
