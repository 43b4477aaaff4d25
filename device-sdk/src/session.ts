import { EventEmitter } from 'node:events';
import type { IConnackPacket, MqttClient } from 'mqtt';
import { DeviceClientError, FATAL_CONNACK } from './errors.ts';
import { InflightPublishes } from './inflight-publishes.ts';
import { OfflineQueue, type PendingPublish } from './offline-queue.ts';
import { isValidTopicName } from './protocol/index.ts';
import { ReconnectSchedule } from './reconnect-schedule.ts';
import { mqttClientOptions, type SessionEvents, type SessionOptions, type SessionStats } from './session-options.ts';
import { SubscriptionTable, type MessageHandler } from './subscription-table.ts';
import type { HeldToken } from './token-source.ts';

export type { SessionEvents, SessionOptions, SessionStats, TlsOptions } from './session-options.ts';

type State = 'idle' | 'connecting' | 'online' | 'refreshing' | 'waiting' | 'closed';

/** How long a refresh or close waits for unacknowledged publishes before it cuts the connection. */
const DRAIN_TIMEOUT_MS = 5_000;
/** bytes a PUBLISH adds around topic and payload: fixed header (≤ 5), topic length (2), packet id (2) */
const PUBLISH_OVERHEAD = 9;

type Mqtt = typeof import('mqtt');
let mqttModule: Promise<Mqtt> | undefined;
/**
 * mqtt.js is loaded with the first session, not with the SDK: code that only mints tokens or
 * handles keys (`latchkey token`, backends) does not pay its load time (~0.1 s) and memory.
 */
const loadMqtt = (): Promise<Mqtt> => (mqttModule ??= import('mqtt'));

/**
 * The connection engine shared by DeviceClient and ServiceClient: one persistent MQTT 3.1.1
 * session (clean=false, QoS 1) kept alive across network failures (backoff with full jitter) and
 * token expiry (a deliberate reconnect with a fresh token before `exp`). mqtt.js's own reconnect
 * timer is off (its period is fixed); this class decides when to reconnect.
 */
export class Session extends EventEmitter<SessionEvents> {
  readonly #o: SessionOptions;
  readonly #client: MqttClient;
  readonly #stores: { incomingStore: InstanceType<Mqtt['Store']>; outgoingStore: InstanceType<Mqtt['Store']> };
  readonly #queue: OfflineQueue;
  readonly #subs = new SubscriptionTable();
  readonly #inflight = new InflightPublishes();
  readonly #schedule: ReconnectSchedule;
  #state: State = 'idle';
  #neverConnected = true;
  #prepared = false;
  #everOnline = false;
  #planned = false;
  #endingForRefresh = false;
  /** the broker sent CONNACK 0 on the current connection */
  #accepted = false;
  #sessionToken: HeldToken | null = null;
  #lastFailure: unknown = null;
  #closing: Promise<void> | null = null;
  #stats = { tokenRefreshes: 0, reconnects: 0, connectAttempts: 0 };

  private constructor(o: SessionOptions, mqtt: Mqtt) {
    super();
    this.#o = o;
    this.#queue = new OfflineQueue(o.maxQueuedMessages, o.queueOverflow);
    this.#schedule = new ReconnectSchedule(o);
    this.#stores = { incomingStore: new mqtt.Store({ clean: false }), outgoingStore: new mqtt.Store({ clean: false }) };
    this.#client = mqtt.connect(o.brokerUrl, mqttClientOptions(o, this.#stores));
    this.#client.on('reconnect', () => this.#applyToken());
    this.#client.on('packetreceive', (p) => {
      if (p.cmd === 'connack' && p.returnCode === 0) this.#accepted = true;
    });
    this.#client.on('connect', (connack) => this.#onConnect(connack));
    this.#client.on('close', () => this.#onClose());
    this.#client.on('error', (err) => this.#onError(err));
    this.#client.on('message', (topic, payload, packet) =>
      this.#subs.deliver(topic, payload, packet, (err) => {
        if (this.listenerCount('handler-error') > 0) this.emit('handler-error', err, topic);
      }),
    );
  }

  /** Opens a session; resolves once the first CONNACK 0 arrived, rejects with a coded error. */
  static async open(o: SessionOptions): Promise<Session> {
    const session = new Session(o, await loadMqtt());
    return new Promise((resolve, reject) => {
      const deadline =
        o.connectTimeoutMs > 0
          ? setTimeout(() => {
              const cause = session.#lastFailure ?? undefined;
              session.#fail(new DeviceClientError('connect_timeout', `no session within ${o.connectTimeoutMs} ms`, { cause }));
            }, o.connectTimeoutMs)
          : null;
      const settle = (err: DeviceClientError | undefined) => {
        if (deadline !== null) clearTimeout(deadline);
        session.off('connect', onConnect);
        session.off('close', onClose);
        if (err === undefined) resolve(session);
        else reject(err);
      };
      const onConnect = () => settle(undefined);
      const onClose = (err: DeviceClientError | undefined) => settle(err ?? new DeviceClientError('closed', 'closed before connecting'));
      session.on('connect', onConnect);
      session.on('close', onClose);
      void session.#attempt();
    });
  }

  get connected(): boolean {
    return this.#state === 'online';
  }

  get stats(): SessionStats {
    return { ...this.#stats, dropped: this.#queue.dropped, queued: this.#queue.length, inflight: this.#inflight.size };
  }

  /**
   * Publishes now when online, else queues (bounded). Resolves when the broker acknowledged it
   * (QoS 1) or it was written (QoS 0).
   */
  publish(topic: string, payload: Buffer, qos: 0 | 1, retain = false): Promise<void> {
    if (!isValidTopicName(topic)) throw new TypeError('invalid topic name');
    if (qos !== 0 && qos !== 1) throw new TypeError('qos must be 0 or 1');
    return new Promise<void>((resolve, reject) => {
      if (this.#state === 'closed') return reject(this.#closedError());
      if (payload.byteLength + Buffer.byteLength(topic) + PUBLISH_OVERHEAD > this.#o.maxPacketSize) {
        // protocol.md §Limits: a larger packet closes the connection; resending it after every reconnect would loop
        return reject(new DeviceClientError('payload_too_large', `PUBLISH exceeds maxPacketSize (${this.#o.maxPacketSize} bytes)`));
      }
      const item: PendingPublish = { topic, payload, qos, retain, resolve, reject };
      if (this.#state === 'online') this.#inflight.send(this.#client, item);
      else this.#queue.push(item);
    });
  }

  /** Subscribes one filter (one SUBSCRIBE per filter); resolves on SUBACK, rejects `subscribe_denied`. */
  subscribe(filter: string, qos: 0 | 1, handler: MessageHandler): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    const granted = this.#subs.add(filter, qos, handler);
    if (this.#state === 'online') this.#subs.sendPending(this.#client, filter);
    return granted;
  }

  /** Removes a subscription (told to the broker now, or after the next reconnect). */
  unsubscribe(filter: string): void {
    if (this.#subs.remove(filter) && this.#state === 'online') this.#subs.sendUnsubscribe(this.#client, filter);
  }

  /**
   * Ends the session: waits (bounded) for unacknowledged publishes, sends DISCONNECT, rejects
   * queued publishes with `closed`. The broker keeps the persistent session for the next connect.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    const wasOnline = this.#state === 'online' || (this.#state === 'refreshing' && !this.#endingForRefresh);
    const err = new DeviceClientError('closed', 'the client was closed');
    this.#closing = this.#shutDown(err, wasOnline).then(() => {
      this.emit('close', undefined);
    });
    return this.#closing;
  }

  // ── connection lifecycle ────────────────────────────────────────────────────────────────

  /** One connect attempt: correct the clock once, make sure a fresh token is held, send CONNECT. */
  async #attempt(): Promise<void> {
    this.#state = 'connecting';
    try {
      if (!this.#prepared && this.#o.prepare !== undefined) {
        await this.#o.prepare();
        this.#prepared = true;
      }
      await this.#o.tokens.ready();
    } catch (err) {
      if (this.#state !== 'connecting') return;
      this.#lastFailure = err;
      this.#scheduleRetry();
      return;
    }
    if (this.#state !== 'connecting') return;
    this.#stats.connectAttempts++;
    this.#accepted = false;
    if (this.#neverConnected) {
      this.#neverConnected = false;
      this.#applyToken();
      this.#client.connect();
    } else {
      this.#client.reconnect(this.#stores); // emits 'reconnect' synchronously → #applyToken
    }
  }

  /** Synchronous, right before mqtt.js builds CONNECT from `options` (design.md §Facts: mqtt.js). */
  #applyToken(): void {
    const held = this.#o.tokens.take();
    if (held === null) return;
    this.#sessionToken = held;
    this.#client.options.password = held.token;
  }

  #onConnect(connack: IConnackPacket): void {
    if (this.#state !== 'connecting') return;
    const refreshed = this.#planned;
    this.#planned = false;
    this.#state = 'online';
    this.#schedule.resetFailures();
    this.#lastFailure = null;
    if (this.#everOnline) {
      if (refreshed) this.#stats.tokenRefreshes++;
      else this.#stats.reconnects++;
    }
    this.#everOnline = true;
    this.#scheduleRefresh();
    this.#subs.sync(this.#client, connack.sessionPresent === true);
    for (const item of this.#queue.drain()) this.#inflight.send(this.#client, item);
    this.emit('connect', { sessionPresent: connack.sessionPresent === true });
    if (refreshed && this.#sessionToken !== null) this.emit('token-refresh', { exp: this.#sessionToken.exp });
  }

  #onClose(): void {
    this.#inflight.connectionLost();
    if (this.#state === 'closed' || this.#endingForRefresh || this.#state === 'waiting') return;
    if (this.#state === 'connecting' && this.#accepted) this.#inflight.strikeOldest(this.#client);
    // a refresh whose reconnect failed was never reported offline: it is an outage now
    const wasOnline = this.#state === 'online' || this.#state === 'refreshing' || this.#planned;
    this.#schedule.clear();
    this.#planned = false;
    if (wasOnline) this.emit('offline');
    this.#scheduleRetry();
  }

  /** protocol.md §MQTT CONNECT: refusals 1, 2, 4, 5 end the client; everything else is retried. */
  #onError(err: Error): void {
    const rc = (err as { code?: unknown }).code;
    if (this.#state === 'connecting' && typeof rc === 'number' && FATAL_CONNACK[rc] !== undefined) {
      this.#fail(new DeviceClientError(FATAL_CONNACK[rc], `the broker refused the connection (CONNACK ${rc})`, { returnCode: rc }));
      return;
    }
    this.#lastFailure = err; // transient: the 'close' that follows schedules a retry
  }

  #scheduleRetry(): void {
    this.#state = 'waiting';
    this.#schedule.retry(() => void this.#attempt());
  }

  /** protocol.md §MQTT CONNECT: the broker ends the session at `exp`; reconnect before, at 80–90% of the lifetime. */
  #scheduleRefresh(): void {
    if (this.#sessionToken !== null) this.#schedule.refreshBefore(this.#sessionToken, () => void this.#refresh());
  }

  async #refresh(): Promise<void> {
    if (this.#state !== 'online') return;
    try {
      await this.#o.tokens.ready();
    } catch (err) {
      this.#lastFailure = err; // keep the current session (its token is still valid) and try again
      if (this.#state === 'online') this.#schedule.refreshAgain(() => void this.#refresh());
      return;
    }
    if (this.#state !== 'online') return;
    this.#state = 'refreshing';
    this.#planned = true;
    const drained = await this.#inflight.drain(DRAIN_TIMEOUT_MS);
    if (this.#state !== 'refreshing') return;
    const idle = drained && Object.keys(this.#client.outgoing).length === 0;
    this.#endingForRefresh = true;
    // a graceful DISCONNECT (no will) when nothing is unacknowledged; otherwise cut, and mqtt.js resends
    this.#client.end(!idle, () => {
      this.#endingForRefresh = false;
      if (this.#state === 'refreshing') void this.#attempt();
    });
  }

  // ── ending ──────────────────────────────────────────────────────────────────────────────

  /** A refusal that retrying cannot fix: stop, reject everything waiting, report. */
  #fail(err: DeviceClientError): void {
    if (this.#closing !== null) return;
    this.#closing = this.#shutDown(err, false);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.emit('close', err);
  }

  async #shutDown(err: DeviceClientError, drainFirst: boolean): Promise<void> {
    this.#state = 'closed';
    this.#schedule.clear();
    this.#queue.rejectAll(err);
    this.#subs.rejectAll(err);
    const drained = drainFirst ? await this.#inflight.drain(DRAIN_TIMEOUT_MS) : false;
    if (!this.#neverConnected) {
      await new Promise<void>((resolve) => this.#client.end(!drained, () => resolve()));
    }
    this.#inflight.rejectAll(err);
  }

  #closedError(): DeviceClientError {
    return new DeviceClientError('closed', 'the client is closed');
  }
}
