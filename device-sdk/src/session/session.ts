import { EventEmitter } from 'node:events';
import type { IConnackPacket, MqttClient } from 'mqtt';
import { DeviceClientError, fatalRefusal } from '../errors.ts';
import { Outbox } from '../messaging/outbox.ts';
import { isValidTopicName } from '../protocol/index.ts';
import { BrokerUrls } from './broker-urls.ts';
import { untilFirstConnect } from './first-connect.ts';
import { loadMqtt, type Mqtt } from './mqtt-module.ts';
import { ReconnectSchedule } from './reconnect-schedule.ts';
import { causeAfterLoss, hasDialled, reportedOnline, type ConnectCause, type SessionState } from './session-state.ts';
import { mqttClientOptions, type SessionEvents, type SessionOptions, type SessionStats } from './session-options.ts';
import { SubscriptionTable, type MessageHandler } from '../messaging/subscription-table.ts';
import type { HeldToken } from '../token/token-source.ts';

export type { SessionEvents, SessionOptions, SessionStats, TlsOptions } from './session-options.ts';

/** How long a refresh or close waits for unacknowledged publishes before it cuts the connection. */
const DRAIN_TIMEOUT_MS = 5_000;

/**
 * The connection engine shared by DeviceClient and ServiceClient: one persistent MQTT 3.1.1
 * session (clean=false, QoS 1) kept alive across network failures (backoff with full jitter) and
 * token expiry (a deliberate reconnect with a fresh token before `exp`). mqtt.js's own reconnect
 * timer is off (its period is fixed); this class decides when to reconnect. Its state is one
 * {@link SessionState}; each transition below is named after what happened.
 */
export class Session extends EventEmitter<SessionEvents> {
  readonly #o: SessionOptions;
  readonly #client: MqttClient;
  readonly #stores: { incomingStore: InstanceType<Mqtt['Store']>; outgoingStore: InstanceType<Mqtt['Store']> };
  readonly #outbox: Outbox;
  readonly #subs = new SubscriptionTable();
  readonly #schedule: ReconnectSchedule;
  readonly #urls: BrokerUrls;
  #state: SessionState = { name: 'idle' };
  /** the clock correction still to do before the first CONNECT (dropped once it succeeded) */
  #prepare: (() => Promise<void>) | undefined;
  /** the token the current (or last) session was opened with */
  #sessionToken: HeldToken | null = null;
  #lastFailure: unknown = null;
  #closing: Promise<void> | null = null;
  #stats = { tokenRefreshes: 0, reconnects: 0, connectAttempts: 0 };

  private constructor(o: SessionOptions, mqtt: Mqtt) {
    super();
    this.#o = o;
    this.#outbox = new Outbox(o);
    this.#schedule = new ReconnectSchedule(o);
    this.#prepare = o.prepare;
    this.#stores = { incomingStore: new mqtt.Store({ clean: false }), outgoingStore: new mqtt.Store({ clean: false }) };
    this.#urls = new BrokerUrls(o.brokerUrls, o.random, o.tls?.servername);
    this.#client = mqtt.connect(this.#urls.current, mqttClientOptions(o, this.#stores));
    this.#client.on('reconnect', () => {
      this.#urls.applyTo(this.#client.options);
      this.#applyToken();
    });
    this.#client.on('packetreceive', (p) => {
      if (p.cmd === 'connack' && p.returnCode === 0 && this.#state.name === 'awaiting-connack') this.#state.accepted = true;
    });
    this.#client.on('connect', (connack) => this.#sessionUp(connack));
    this.#client.on('close', () => this.#connectionLost());
    this.#client.on('error', (err) => this.#clientError(err));
    this.#client.on('message', (topic, payload, packet) =>
      this.#subs.deliver(topic, payload, packet, (err) => {
        if (this.listenerCount('handler-error') > 0) this.emit('handler-error', err, topic);
      }),
    );
  }

  /** Opens a session; resolves once the first CONNACK 0 arrived, rejects with a coded error. */
  static async open(o: SessionOptions): Promise<Session> {
    const session = new Session(o, await loadMqtt());
    const opened = untilFirstConnect(session, o.connectTimeoutMs, () => {
      const cause = session.#lastFailure ?? undefined;
      session.#fail(new DeviceClientError('connect_timeout', `no session within ${o.connectTimeoutMs} ms`, { cause }));
    });
    void session.#attempt('first');
    return opened.then(() => session);
  }

  get connected(): boolean {
    return this.#state.name === 'online';
  }

  get stats(): SessionStats {
    return { ...this.#stats, ...this.#outbox.stats };
  }

  /**
   * Publishes now when online, else queues (bounded). Resolves when the broker acknowledged it
   * (QoS 1) or it was written (QoS 0).
   */
  publish(topic: string, payload: Buffer, qos: 0 | 1, retain = false): Promise<void> {
    if (!isValidTopicName(topic)) throw new TypeError('invalid topic name');
    if (qos !== 0 && qos !== 1) throw new TypeError('qos must be 0 or 1');
    if (this.#state.name === 'closed') return Promise.reject(this.#closedError());
    return this.#outbox.publish({ topic, payload, qos, retain }, this.#state.name === 'online' ? this.#client : null);
  }

  /** Subscribes one filter (one SUBSCRIBE per filter); resolves on SUBACK, rejects `subscribe_denied`. */
  subscribe(filter: string, qos: 0 | 1, handler: MessageHandler): Promise<void> {
    if (this.#state.name === 'closed') return Promise.reject(this.#closedError());
    const granted = this.#subs.add(filter, qos, handler);
    if (this.#state.name === 'online') this.#subs.sendPending(this.#client, filter);
    return granted;
  }

  /** Removes a subscription (told to the broker now, or after the next reconnect). */
  unsubscribe(filter: string): void {
    if (this.#subs.remove(filter) && this.#state.name === 'online') this.#subs.sendUnsubscribe(this.#client, filter);
  }

  /**
   * Ends the session: waits (bounded) for unacknowledged publishes, sends DISCONNECT, rejects
   * queued publishes with `closed`. The broker keeps the persistent session for the next connect.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    const wasOnline = this.#state.name === 'online' || this.#state.name === 'draining';
    this.#closing = this.#shutDown(new DeviceClientError('closed', 'the client was closed'), wasOnline).then(() => void this.emit('close', undefined));
    return this.#closing;
  }

  // ── connecting: each transition named after what happened ──────────────────────────────────

  /** An attempt starts: correct the clock once, hold a fresh token, send CONNECT. */
  async #attempt(cause: ConnectCause): Promise<void> {
    const preparing: SessionState = { name: 'preparing', cause };
    this.#state = preparing;
    try {
      if (this.#prepare !== undefined) {
        await this.#prepare();
        this.#prepare = undefined;
      }
      await this.#o.tokens.ready();
    } catch (err) {
      if (this.#state !== preparing) return;
      this.#lastFailure = err;
      this.#backOff(cause);
      return;
    }
    if (this.#state !== preparing) return;
    this.#stats.connectAttempts++;
    this.#state = { name: 'awaiting-connack', cause, accepted: false };
    if (cause === 'first') {
      this.#applyToken();
      this.#client.connect();
    } else {
      this.#client.reconnect(this.#stores); // emits 'reconnect' synchronously → #applyToken
    }
  }

  /** Synchronous, right before mqtt.js builds CONNECT from `options` (it cannot await a signature). */
  #applyToken(): void {
    const held = this.#o.tokens.take();
    if (held === null) return;
    this.#sessionToken = held;
    this.#client.options.password = held.token;
  }

  /** CONNACK 0: a session is up; what it counts as depends on why the session was connecting. */
  #sessionUp(connack: IConnackPacket): void {
    const s = this.#state;
    if (s.name !== 'awaiting-connack') return;
    this.#state = { name: 'online' };
    this.#schedule.resetFailures();
    this.#lastFailure = null;
    if (s.cause === 'refresh') this.#stats.tokenRefreshes++;
    else if (s.cause === 'outage') this.#stats.reconnects++;
    this.#scheduleRefresh();
    this.#subs.sync(this.#client, connack.sessionPresent === true);
    this.#outbox.flush(this.#client);
    this.emit('connect', { sessionPresent: connack.sessionPresent === true });
    if (s.cause === 'refresh' && this.#sessionToken !== null) this.emit('token-refresh', { exp: this.#sessionToken.exp });
  }

  /**
   * The connection closed without this session asking for it (while refreshing, it did). The next
   * attempt goes to the next broker URL: this one's node may be gone.
   */
  #connectionLost(): void {
    this.#outbox.connectionLost();
    const s = this.#state;
    if (s.name === 'closed' || s.name === 'disconnecting' || s.name === 'backing-off') return;
    if (s.name === 'awaiting-connack' && s.accepted) this.#outbox.strikeOldest(this.#client);
    this.#schedule.clear();
    if (reportedOnline(s)) this.emit('offline');
    this.#urls.next();
    this.#backOff(causeAfterLoss(s));
  }

  /** protocol.md §MQTT CONNECT: refusals 1, 2, 4, 5 end the client; everything else is retried. */
  #clientError(err: Error): void {
    const refusal = fatalRefusal(err);
    if (refusal !== null && (this.#state.name === 'preparing' || this.#state.name === 'awaiting-connack')) this.#fail(refusal);
    else this.#lastFailure = err; // transient: the 'close' that follows schedules a retry
  }

  /** An attempt failed: the next one starts after the backoff delay. */
  #backOff(cause: ConnectCause): void {
    this.#state = { name: 'backing-off', cause };
    this.#schedule.retry(() => void this.#attempt(cause));
  }

  // ── refreshing ──────────────────────────────────────────────────────────────────────────

  /** protocol.md §MQTT CONNECT: the broker ends the session at `exp`; reconnect before, at 80–90% of the lifetime. */
  #scheduleRefresh(): void {
    if (this.#sessionToken !== null) this.#schedule.refreshBefore(this.#sessionToken, () => void this.#refreshDue());
  }

  /** A refresh fell due: with a fresh token in hand, drain, end the session gracefully, reconnect. */
  async #refreshDue(): Promise<void> {
    const online = this.#state;
    if (online.name !== 'online') return;
    try {
      await this.#o.tokens.ready();
    } catch (err) {
      this.#lastFailure = err; // keep the current session (its token is still valid) and try again
      if (this.#state === online) this.#schedule.refreshAgain(() => void this.#refreshDue());
      return;
    }
    if (this.#state !== online) return;
    const draining: SessionState = { name: 'draining' };
    this.#state = draining;
    const drained = await this.#outbox.drain(DRAIN_TIMEOUT_MS);
    if (this.#state !== draining) return;
    const idle = drained && Object.keys(this.#client.outgoing).length === 0;
    const disconnecting: SessionState = { name: 'disconnecting' };
    this.#state = disconnecting;
    // a graceful DISCONNECT (no will) when nothing is unacknowledged; otherwise cut, and mqtt.js resends
    this.#client.end(!idle, () => {
      if (this.#state === disconnecting) void this.#attempt('refresh');
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
    const dialled = hasDialled(this.#state);
    this.#state = { name: 'closed' };
    this.#schedule.clear();
    this.#outbox.rejectQueued(err);
    this.#subs.rejectAll(err);
    const drained = drainFirst ? await this.#outbox.drain(DRAIN_TIMEOUT_MS) : false;
    if (dialled) {
      await new Promise<void>((resolve) => this.#client.end(!drained, () => resolve()));
    }
    this.#outbox.rejectInflight(err);
  }

  #closedError(): DeviceClientError {
    return new DeviceClientError('closed', 'the client is closed');
  }
}
