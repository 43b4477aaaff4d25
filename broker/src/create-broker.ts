import { DEFAULT_LIMITS, systemClock, type Clock } from '@latchkey/device-sdk/protocol';
import { Aedes, type Client } from 'aedes';
import type { Registry } from 'prom-client';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createAuthorizers } from './acl/authorize.ts';
import { wireAedesEvents } from './aedes-events.ts';
import { createAuthenticate } from './auth/authenticate.ts';
import { CredentialCache } from './auth/credential-cache.ts';
import { FailureThrottle } from './auth/failure-throttle.ts';
import { JtiCache } from './auth/jti-cache.ts';
import { RefusalLog } from './auth/refusal-log.ts';
import { SessionTable } from './auth/session-table.ts';
import { createBrokerMetrics } from './broker-metrics.ts';
import { resolveBrokerConfig, type BrokerConfig, type BrokerConfigInput } from './config.ts';
import { DeviceStatus } from './device-status.ts';
import { addressesOf, startListeners, type BrokerAddresses } from './listeners/start-listeners.ts';
import type { Listener } from './listeners/listeners.ts';
import { guardPacketSize } from './listeners/packet-size-guard.ts';
import { createMessaging, type DeviceMessaging } from './messaging.ts';
import { limitOfflineQueues } from './offline-queue-limit.ts';
import type { BrokerRegistryPort } from './registry-port.ts';
import { createSessionEnder } from './session-ender.ts';

/** The logger the broker writes to (a pino logger fits). Never given a token or a key. */
export interface BrokerLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface BrokerDeps {
  config: BrokerConfigInput;
  registry: BrokerRegistryPort;
  /** epoch ms; drives token checks, throttling windows and session expiry */
  clock?: Clock;
  log: BrokerLog;
  /** prom-client Registry shared with provisioning */
  metrics: Registry;
}

export interface Broker {
  readonly config: BrokerConfig;
  /** True between a successful `listen()` and `close()`. */
  readonly ready: boolean;
  /** The bound listeners (actual ports when configured with 0); null for one not configured. */
  readonly addresses: BrokerAddresses;
  /** provisioning's DeviceMessagingPort, in-process. */
  readonly messaging: DeviceMessaging;
  /** Live authenticated sessions. */
  readonly sessionCount: number;
  listen(): Promise<void>;
  /** Ends every session (wills suppressed), closes the listeners and flushes device status; within 5 s. */
  close(): Promise<void>;
}

/** aedes internals this module relies on (present at runtime, missing from its typings). */
interface AedesInternals {
  clients: Record<string, Client | undefined>;
  persistence: Parameters<typeof limitOfflineQueues>[0];
}

/** Enough for 64-character device ids and `svc:{name}:{instance}` (aedes default: 23). */
const MAX_CLIENT_ID_LENGTH = 200;
const SWEEP_INTERVAL_MS = 250; // protocol.md: sessions end ≤ 1 s after exp + tolerance
const PRUNE_EVERY_SWEEPS = 40;
const AUTH_TIMEOUT_MS = 5_000;
const CLOSE_DEADLINE_MS = 5_000;

/**
 * Builds the MQTT broker (aedes 1.x) with token authentication, topic ACLs, session lifecycle
 * and hardening (issue 4). Nothing listens until `listen()` (design.md style #8).
 *
 * Wills: when the broker itself ends a session (token expiry, block, delete, credential
 * removal, shutdown) the will is suppressed — the device did not fail, and a revoked principal
 * must not get a last message out. On network loss, keepalive timeout or a protocol violation
 * (oversized packet, refused publish) the will is published as MQTT 3.1.1 §3.1.2.5 requires,
 * if its topic is still allowed.
 *
 * @example
 * ```ts
 * const broker = createBroker({ config: { host: '127.0.0.1', mqttPort: 0 }, registry, log, metrics: new Registry() });
 * await broker.listen();
 * console.log(broker.addresses.mqtt?.port);
 * await broker.close();
 * ```
 */
export function createBroker(deps: BrokerDeps): Broker {
  if (deps === null || typeof deps !== 'object') throw new TypeError('createBroker needs { config, registry, log, metrics }');
  const { registry, log, metrics: metricsRegistry } = deps;
  for (const m of ['findPrincipal', 'onChange', 'recordConnected', 'recordDisconnected', 'recordSeen', 'recordAuthFailure', 'recordLastErrors', 'saveState'] as const) {
    if (typeof registry?.[m] !== 'function') throw new TypeError(`registry.${m} must be a function`);
  }
  if (typeof log?.info !== 'function') throw new TypeError('log must be a logger');
  if (typeof metricsRegistry?.registerMetric !== 'function') throw new TypeError('metrics must be a prom-client Registry');
  if (deps.clock !== undefined && typeof deps.clock !== 'function') throw new TypeError('clock must be a function');
  const config = resolveBrokerConfig(deps.config);
  const clock = deps.clock ?? systemClock;

  let state: 'idle' | 'listening' | 'closing' | 'closed' = 'idle';
  let listeners: Listener[] = [];
  const sessions = new SessionTable((client, p, reason) => ender.endSession(client, p, reason));
  const metrics = createBrokerMetrics(metricsRegistry, () => sessions.size);
  const credentials = new CredentialCache(registry, config.credentialCacheSize, (err, principal, kid) =>
    log.error({ err, principal, kid }, 'a stored credential does not parse; skipped'),
  );
  const throttle = new FailureThrottle({
    limit: config.authFailureLimit,
    windowMs: DEFAULT_LIMITS.authFailureWindowMs,
    capacity: config.throttleTableSize,
  });
  const jtis = config.requireJti ? new JtiCache({ capacity: config.jtiCacheSize, toleranceMs: config.clockTolerance * 1000 }) : null;
  const status = new DeviceStatus(registry, clock, config.statusFlushInterval * 1000, (err) =>
    log.error({ err }, 'device status write failed'),
  );
  /** the peer address of a WebSocket connection, kept on the stream itself (sockets know their own) */
  const REMOTE_ADDRESS = Symbol('latchkey.remoteAddress');
  type Tagged = Duplex & { [REMOTE_ADDRESS]?: string | null };
  const remoteAddressOf = (stream: Tagged): string | null =>
    REMOTE_ADDRESS in stream ? (stream[REMOTE_ADDRESS] ?? null) : ((stream as Partial<Socket>).remoteAddress ?? null);
  const emptyClientIds = new WeakSet<Client>();
  const refusals = new RefusalLog({ windowMs: DEFAULT_LIMITS.authFailureWindowMs });
  /** Refused connects are written here, on the sweep timer, never on the connect path (RefusalLog). */
  const flushRefusals = (now: number): void => {
    const { records, lastErrors } = refusals.drain(now);
    for (const record of records) {
      if (record.repeated !== undefined) log.info({ ...record }, 'more connects refused in the last minute');
      try {
        registry.recordAuthFailure(record);
      } catch (err) {
        log.error({ err }, 'recording an auth failure failed');
      }
    }
    if (lastErrors.length === 0) return;
    try {
      registry.recordLastErrors(lastErrors);
    } catch (err) {
      log.error({ err }, 'recording auth failures failed');
    }
  };

  const authenticate = createAuthenticate({
    rules: config,
    clock,
    credentials,
    throttle,
    jtis,
    sessions,
    emptyClientIds,
    remoteAddressOf: (client) => remoteAddressOf(client.conn as Tagged),
    timeoutMs: AUTH_TIMEOUT_MS,
    observeVerify: (s) => metrics.observeVerify(s),
    onAccepted: (p) => {
      metrics.connectAccepted();
      log.debug({ principal: p.principal, clientId: p.clientId, kid: p.kid }, 'connect accepted');
    },
    onRefused: (failure, notice, cause) => {
      metrics.connectRefused(failure.reason);
      if (failure.reason === 'internal_error' || failure.reason === 'auth_timeout') {
        log.error({ err: cause, clientId: failure.clientId }, 'authenticate failed unexpectedly');
      }
      // a repeat (same address, principal and reason; or too many from one address or for one
      // principal) is counted into a summary instead of a record and a log line of its own
      if (refusals.add(failure, notice)) log.info({ ...failure }, 'connect refused');
    },
  });
  const authorizers = createAuthorizers({
    principalOf: (client) => sessions.principalOf(client),
    onPublishDenied: (p, topic) => {
      metrics.closed('publish_denied');
      log.info({ principal: p?.principal ?? null, topic: topic.slice(0, 256) }, 'publish refused; closing the connection');
    },
  });

  const aedes = new Aedes({
    connectTimeout: config.connectTimeout * 1000, // protocol.md §Limits
    maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
    preConnect(client, packet, callback) {
      // aedes replaces an empty client id with a generated one; remember it was missing (CONNACK 2)
      if (typeof packet.clientId !== 'string' || packet.clientId.length === 0) emptyClientIds.add(client);
      callback(null, true);
    },
    authenticate,
    ...authorizers,
  });
  const internals = aedes as unknown as AedesInternals;

  const isDeviceOnline = (deviceId: string): boolean => {
    const client = state === 'listening' ? internals.clients[deviceId] : undefined;
    // registered in aedes.clients before its CONNACK is written; `connected` is set only later
    return client !== undefined && !client.closed && sessions.principalOf(client)?.kind === 'device';
  };
  const messaging = createMessaging({
    aedes: () => (state === 'listening' ? aedes : null),
    isDeviceOnline,
    onHandlerError: (err, filter) => log.error({ err, filter }, 'a messaging subscriber threw'),
  });

  const ender = createSessionEnder({ aedes, sessions, credentials, metrics, log });
  wireAedesEvents(aedes, { sessions, status, messaging, registry, clock, log });

  /** protocol.md §Limits: one handler for every connection whose packet is too large */
  const onOversizedPacket = (stream: Duplex): void => {
    metrics.closed('packet_too_large');
    log.info({ remoteAddress: remoteAddressOf(stream as Tagged) }, 'packet larger than maxPacketSize; closing the connection');
    stream.destroy();
  };

  function onConnection(stream: Duplex, remoteAddress?: string | null): void {
    if (remoteAddress !== undefined) (stream as Tagged)[REMOTE_ADDRESS] = remoteAddress;
    // before aedes can buffer a packet (aedes has no maximum, issue #831)
    guardPacketSize(stream, config.maxPacketSize, onOversizedPacket);
    aedes.handle(stream);
  }

  let unsubscribeFeed: (() => void) | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;

  async function listen(): Promise<void> {
    if (state !== 'idle') throw new TypeError('listen() may be called once');
    await aedes.listen();
    limitOfflineQueues(
      internals.persistence,
      config.maxQueuedMessages,
      (clientId) => internals.clients[clientId] !== undefined,
      (n) => metrics.dropped('offline_queue_full', n),
    );
    unsubscribeFeed = registry.onChange(ender.onRegistryChange);
    let sweeps = 0;
    sweepTimer = setInterval(() => {
      const now = clock();
      sessions.sweep(now);
      flushRefusals(now);
      if (++sweeps % PRUNE_EVERY_SWEEPS === 0) {
        throttle.prune(now);
        jtis?.prune(now);
      }
    }, SWEEP_INTERVAL_MS);
    sweepTimer.unref();
    try {
      listeners = await startListeners(config, onConnection);
    } catch (err) {
      state = 'listening';
      await close();
      throw err;
    }
    state = 'listening';
    status.start();
  }

  async function close(): Promise<void> {
    if (state === 'closing' || state === 'closed') return;
    state = 'closing';
    if (sweepTimer !== null) clearInterval(sweepTimer);
    unsubscribeFeed?.();
    for (const client of Object.values(internals.clients)) {
      const p = client === undefined ? undefined : sessions.principalOf(client);
      if (client !== undefined && p !== undefined) ender.endSession(client, p, 'broker_closing');
    }
    const shutdown = Promise.all([
      new Promise<void>((resolve) => aedes.close(() => resolve())),
      ...listeners.map((l) => l.close()),
    ]);
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([shutdown, new Promise((resolve) => (deadline = setTimeout(resolve, CLOSE_DEADLINE_MS)))]);
    clearTimeout(deadline);
    flushRefusals(Number.POSITIVE_INFINITY); // every pending record and summary
    status.close();
    credentials.clear();
    state = 'closed';
  }

  return {
    config,
    get ready() {
      return state === 'listening';
    },
    get addresses() {
      return addressesOf(listeners);
    },
    messaging: {
      isOnline: messaging.isOnline,
      publish: messaging.publish,
      subscribe: messaging.subscribe,
    },
    get sessionCount() {
      return sessions.size;
    },
    listen,
    close,
  };
}
