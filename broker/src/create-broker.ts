import { randomUUID } from 'node:crypto';
import { MAX_CLIENT_ID_LENGTH, gcpDeviceTopics, systemClock, type Clock } from '@latchkey/device-sdk/protocol';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { Registry } from 'prom-client';
import { createAuthorizers } from './acl/authorize.ts';
import { createSignedPublishCheck } from './acl/signed-publish.ts';
import { allClients, type BrokerPersistence } from './aedes-internals.ts';
import { wireAedesEvents } from './aedes-events.ts';
import { createAuthenticate, FEED_DOWN_LIMIT_MS } from './auth/authenticate.ts';
import { seedRetainedConfig } from './config-seed.ts';
import { reportConnects } from './auth/connect-report.ts';
import { CredentialCache } from './auth/credential-cache.ts';
import { SessionTable, type SessionPrincipal } from './auth/session-table.ts';
import { VerifiedTokenCache } from './auth/verified-token-cache.ts';
import { VerifyPool } from './auth/verify-pool.ts';
import { createBrokerMetrics } from './broker-metrics.ts';
import { clusterState } from './cluster/cluster-state.ts';
import { resolveBrokerConfig, type BrokerConfig, type BrokerConfigInput } from './config.ts';
import { DeviceStatus } from './device-status.ts';
import { addressesOf, startListeners, type BrokerAddresses } from './listeners/start-listeners.ts';
import type { Listener } from './listeners/listeners.ts';
import { connectionIntake, remoteAddressOf } from './listeners/connection-intake.ts';
import { DELIVERY_PROPERTY, GcpSessions } from './gcp/gcp-sessions.ts';
import { createMessaging, type DeviceMessaging, type GcpCommandOutcome } from './messaging.ts';
import type { BrokerRegistryPort, SessionEvent } from './registry-port.ts';
import { createSessionEnder } from './session-ender.ts';
import { processState, type SharedState } from './shared-state.ts';
import { waitAtMost } from './wait-at-most.ts';
import { DEFAULT_LIMITS } from '@latchkey/device-sdk/protocol';

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
  /** aedes persistence (sessions, queued messages, retained messages, wills); default: in memory. Not with `redisUrl`. */
  persistence?: BrokerPersistence;
  /** aedes's message emitter (routing between clients); default: in process. Not with `redisUrl`. */
  mq?: AedesOptions['mq'];
  /** Sees each device session open and close as it happens, before the batched status write (live views); must not block. */
  onSessionEvent?: (event: SessionEvent) => void;
}

export interface Broker {
  readonly config: BrokerConfig;
  /** True between a successful `listen()` and `close()`. */
  readonly ready: boolean;
  /** The bound listeners (actual ports when configured with 0); null for one not configured. */
  readonly addresses: BrokerAddresses;
  /** provisioning's DeviceMessagingPort, in-process. */
  readonly messaging: DeviceMessaging;
  /** Live authenticated sessions on this node. */
  readonly sessionCount: number;
  /** This node's name in a cluster (`nodeId`, or the generated one); null for one process. */
  readonly nodeId: string | null;
  /** The threads checking token signatures (`verifyThreads`, issue 12); null when 0. */
  readonly verifyPool: VerifyPool | null;
  /**
   * Starts the broker. `serve: false` (`latchkey up --role api`) runs it without MQTT listeners:
   * a cluster member that publishes and reads presence for the HTTP API but takes no devices.
   */
  listen(opts?: { serve?: boolean }): Promise<void>;
  /** Ends every session (wills suppressed), closes the listeners and flushes device status; within 5 s. */
  close(): Promise<void>;
}

const SWEEP_INTERVAL_MS = 250; // protocol.md: sessions end ≤ 1 s after exp + tolerance
const PRUNE_EVERY_SWEEPS = 40;
const AUTH_TIMEOUT_MS = 5_000;
/**
 * docs/operations.md: shutdown is done within 5 s. Of that, sessions and listeners get 4 s, and a
 * cluster node then gets 1 s to leave the cluster (cluster/cluster-state.ts), which is all it
 * takes with Redis away (its commands would otherwise wait out the client's retries).
 */
const SESSIONS_CLOSE_DEADLINE_MS = 4_000;
/** protocol.md §Cloud IoT Core config: an unacknowledged QoS 1 config is sent again after this long */
const GCP_CONFIG_RESEND_MS = 10_000;
/** `devices/{id}/config`, as the HTTP API publishes a new config */
const NATIVE_CONFIG_TOPIC = /^devices\/([^/]+)\/config$/;

/**
 * Builds the MQTT broker (aedes 1.x) with token authentication, topic ACLs, session lifecycle
 * and hardening (issue 4). Nothing listens until `listen()` (architecture.md §Conventions).
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
  for (const m of ['findPrincipal', 'onChange', 'recordSessionEvents', 'recordSeen', 'recordCredentialUses', 'recordAuthFailure', 'recordLastErrors', 'saveState', 'allConfigs'] as const) {
    if (typeof registry?.[m] !== 'function') throw new TypeError(`registry.${m} must be a function`);
  }
  if (typeof registry.feed?.downForMs !== 'function' || typeof registry.feed.onState !== 'function') throw new TypeError('registry.feed must have downForMs() and onState()');
  if (typeof log?.info !== 'function') throw new TypeError('log must be a logger');
  if (typeof metricsRegistry?.registerMetric !== 'function') throw new TypeError('metrics must be a prom-client Registry');
  if (deps.clock !== undefined && typeof deps.clock !== 'function') throw new TypeError('clock must be a function');
  if (deps.onSessionEvent !== undefined && typeof deps.onSessionEvent !== 'function') throw new TypeError('onSessionEvent must be a function');
  const config = resolveBrokerConfig(deps.config);
  const clock = deps.clock ?? systemClock;
  const gcpEnabled = config.gcpProjects.length > 0;
  if (gcpEnabled) {
    for (const m of ['deviceIdOfNumId', 'findGcpConfig', 'recordConfigAck'] as const) {
      if (typeof registry[m] !== 'function') throw new TypeError(`registry.${m} must be a function when gcpProjects is set`);
    }
  }
  if (config.redisUrl !== null && (deps.persistence !== undefined || deps.mq !== undefined)) {
    throw new TypeError('persistence and mq are the cluster\'s own with redisUrl: give one or the other');
  }

  let state: 'idle' | 'listening' | 'closing' | 'closed' = 'idle';
  let listeners: Listener[] = [];
  const sessions = new SessionTable((client, p, reason) => ender.endSession(client, p, reason));
  const metrics = createBrokerMetrics(metricsRegistry, () => sessions.size);
  const sharedDeps = { config, aedes: () => aedes, sessions, registry, metrics, log, persistence: deps.persistence, mq: deps.mq };
  const shared: SharedState & { nodeId?: string } = config.redisUrl === null ? processState(sharedDeps) : clusterState(sharedDeps);
  const credentials = new CredentialCache(registry, config.credentialCacheSize, (err, principal, kid) =>
    log.error({ err, principal, kid }, 'a stored credential does not parse; skipped'),
  );
  const verifiedTokens = new VerifiedTokenCache(config.verifiedTokenCacheSize);
  const verifyPool =
    config.verifyThreads === 0
      ? null
      : new VerifyPool({
          threads: config.verifyThreads,
          // the keys of the principals the credential cache holds, a few each
          keyCacheSize: Math.max(1024, config.credentialCacheSize * 2),
          onThreadFailure: (err) => {
            metrics.verifyThreadFailed();
            log.error({ err }, 'a verify thread ended; its connects were refused with CONNACK 3 and it is replaced');
          },
        });
  const onStatusError = (err: unknown) => log.error({ err }, 'device status write failed');
  const status = new DeviceStatus(registry, clock, config.statusFlushInterval * 1000, onStatusError, deps.onSessionEvent ?? null);
  const emptyClientIds = new WeakSet<Client>();
  const report = reportConnects({ metrics, log, registry, windowMs: DEFAULT_LIMITS.authFailureWindowMs });

  const authenticate = createAuthenticate({
    rules: config,
    gcp: gcpEnabled
      ? {
          projects: config.gcpProjects,
          maxTokenLifetime: config.gcpMaxTokenLifetime,
          clockTolerance: config.gcpClockTolerance,
          deviceIdOfNumId: (numId) => (registry.deviceIdOfNumId as NonNullable<BrokerRegistryPort['deviceIdOfNumId']>)(numId),
        }
      : null,
    clock,
    credentials,
    verifiedTokens,
    verifyPool,
    onTokenCacheHit: metrics.tokenCacheHit,
    throttle: shared.throttle,
    jtis: shared.jtis,
    sessions,
    unavailable: shared.unavailable,
    supersede: (client) => ender.supersede(client.id, client),
    emptyClientIds,
    remoteAddressOf: (client) => remoteAddressOf(client.conn),
    timeoutMs: AUTH_TIMEOUT_MS,
    feedDownForMs: () => registry.feed.downForMs(),
    ...report.hooks,
    onAccepted: (p) => {
      report.hooks.onAccepted(p);
      // issue 15: the credential that verified this connect, batched with device status (no write per connect)
      status.credentialUsed(p.principal, p.kid, 'connect');
    },
  });
  const signed = createSignedPublishCheck({
    rules: config,
    clock,
    credentialsOf: (deviceId) => credentials.peek(deviceId)?.record,
    loadCredentials: async (deviceId) => (await credentials.load(deviceId)).record,
    requiredTopics: config.requireSignedTopics,
    maxBytes: config.maxPacketSize,
  });
  const authorizers = createAuthorizers({
    principalOf: (client) => sessions.principalOf(client),
    onPublishDenied: (p, topic) => {
      metrics.closed('publish_denied');
      log.info({ principal: p?.principal ?? null, topic: topic.slice(0, 256) }, 'publish refused; closing the connection');
    },
    forwardGcp: (client, packet) => (gcp === null ? packet : gcp.forward(client, packet)),
    signed,
    onSignedPublish: (p, topic, result) => {
      if (result.ok) {
        metrics.signedPublish('ok');
        status.credentialUsed(result.verified.deviceId, result.verified.kid, 'message');
        return;
      }
      metrics.signedPublish(result.reason);
      metrics.closed('signature_refused');
      log.info({ principal: p.principal, topic: topic.slice(0, 256), reason: result.reason }, 'signed message refused; closing the connection');
    },
  });

  const { persistence } = shared.aedesOptions;
  const aedes: Aedes = new Aedes({
    ...shared.aedesOptions,
    connectTimeout: config.connectTimeout * 1000, // protocol.md §Limits
    maxClientsIdLength: MAX_CLIENT_ID_LENGTH, // aedes's default, 23, is shorter than a 64-character device id
    preConnect(client, packet, callback) {
      // aedes replaces an empty client id with a generated one; remember it was missing (CONNACK 2)
      if (typeof packet.clientId !== 'string' || packet.clientId.length === 0) emptyClientIds.add(client);
      callback(null, true);
    },
    authenticate,
    ...authorizers,
  });
  // protocol.md §Cloud IoT Core config, §Cloud IoT Core commands: what the broker sends Cloud IoT Core sessions itself
  const pendingCommands = new Map<string, (outcome: GcpCommandOutcome) => void>();
  const gcp = gcpEnabled
    ? new GcpSessions({
        aedes,
        clock,
        findConfig: async (deviceId) => (registry.findGcpConfig as NonNullable<BrokerRegistryPort['findGcpConfig']>)(deviceId),
        recordConfigAck: async (deviceId, version, at) => (registry.recordConfigAck as NonNullable<BrokerRegistryPort['recordConfigAck']>)(deviceId, version, at),
        resendMs: GCP_CONFIG_RESEND_MS,
        onCommandDelivered: (id) => pendingCommands.get(id)?.('delivered'),
        log,
      })
    : null;
  if (gcp !== null) {
    aedes.on('clientReady', (client) => {
      const p = sessions.principalOf(client);
      if (p?.topics.kind !== 'device' || p.topics.dialect !== 'gcp') return;
      // one connection per device, as Cloud IoT Core allowed: its path by id and by numId are two
      // client ids, so aedes's own takeover does not see them as one; the newer session wins
      const previous = gcp.clientOf(p.principal);
      const old = previous === undefined || previous === client ? undefined : sessions.principalOf(previous);
      if (previous !== undefined && old !== undefined) ender.endSession(previous, old, 'session_taken_over');
      gcp.attach(client, p.principal);
    });
    aedes.on('clientDisconnect', (client) => gcp.detach(client));
    aedes.on('subscribe', (subs, client) => gcp.onSubscribe(client, subs));
    // a new config published by the HTTP API (native form): a subscribed Cloud IoT Core session gets its bytes now
    aedes.on('publish', (packet, client) => {
      const m = client === null ? NATIVE_CONFIG_TOPIC.exec(packet.topic) : null;
      if (m !== null) gcp.onConfigChanged(m[1] as string);
    });
  }

  /**
   * protocol.md §Cloud IoT Core commands: publishes on `/devices/{id}/commands[/{subfolder}]` marked for
   * tracking; resolves once the device PUBACKed it (or it was written at QoS 0).
   */
  const sendGcpCommand = (deviceId: string, subfolder: string | undefined, payload: Buffer, timeoutMs: number): Promise<GcpCommandOutcome> => {
    if (gcp === null || state !== 'listening' || !gcp.isSubscribedToCommands(deviceId)) return Promise.resolve('offline');
    const id = randomUUID();
    return new Promise<GcpCommandOutcome>((resolve) => {
      const timer = setTimeout(() => settle('timeout'), timeoutMs);
      const settle = (outcome: GcpCommandOutcome) => {
        clearTimeout(timer);
        pendingCommands.delete(id);
        resolve(outcome);
      };
      pendingCommands.set(id, settle);
      const packet = { cmd: 'publish' as const, topic: gcpDeviceTopics(deviceId).command(subfolder), payload, qos: 1 as const, retain: false, dup: false };
      aedes.publish(Object.assign(packet, { properties: { userProperties: { [DELIVERY_PROPERTY]: id } } }), (err) => {
        if (err) settle('offline');
      });
    });
  };
  const messaging = createMessaging({
    aedes: () => (state === 'listening' ? aedes : null),
    onlineAmong: async (ids) => {
      if (state !== 'listening') return new Set();
      const online = await shared.onlineAmong(ids);
      // a Cloud IoT Core session's client id is its path: this node's GcpSessions knows which device it is
      if (gcp !== null) for (const id of ids) if (gcp.isOnline(id)) online.add(id);
      return online;
    },
    onHandlerError: (err, filter) => log.error({ err, filter }, 'a messaging subscriber threw'),
  });

  const ender = createSessionEnder({ aedes, persistence, sessions, credentials, verifiedTokens, metrics, log, forget: (id) => shared.forget(id) });
  const unwrapSigned = async (p: SessionPrincipal, topic: string, payload: Buffer) => (await signed.unwrap(p, topic, payload))?.payload ?? null;
  wireAedesEvents(aedes, { sessions, status, shared, registry, clock, log, unwrapSigned });

  const onConnection = connectionIntake({
    maxPacketSize: config.maxPacketSize,
    handle: (stream) => aedes.handle(stream),
    onOversized: (stream) => {
      metrics.closed('packet_too_large');
      log.info({ remoteAddress: remoteAddressOf(stream) }, 'packet larger than maxPacketSize; closing the connection');
      stream.destroy();
    },
  });

  let unsubscribeFeed: (() => void) | null = null;
  let unsubscribeFeedState: (() => void) | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;

  async function listen(opts: { serve?: boolean } = {}): Promise<void> {
    if (state !== 'idle') throw new TypeError('listen() may be called once');
    ender.watchTakeovers(); // before aedes.listen() subscribes its own handler of the same topic
    await aedes.listen();
    try {
      await shared.start(aedes);
    } catch (err) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await shared.stop();
      throw err;
    }
    unsubscribeFeed = registry.onChange(ender.onRegistryChange);
    unsubscribeFeedState = registry.feed.onState((feedState) => {
      if (feedState === 'down') log.warn({}, `registry change feed down; CONNECTs refused with CONNACK 3 after ${FEED_DOWN_LIMIT_MS} ms`);
      else log.info({ feedState }, 'registry change feed back');
      // changes were lost to outbox pruning: nothing cached or decided from the registry is trusted
      if (feedState === 'full_resync') void ender.recheckAll(registry.findPrincipal.bind(registry));
    });
    // restart durability: retained config from the registry, before any device can subscribe. Not
    // in a cluster: there the retained configs live in Redis, and publishing them again at every
    // node start would resend each subscribed device its config and could overwrite a newer one set
    // meanwhile through another node (docs/operations.md §What survives what).
    try {
      const seeded = config.redisUrl === null ? await seedRetainedConfig(aedes, registry) : 0;
      if (seeded > 0) log.info({ configs: seeded }, 'retained device configs published from the registry');
    } catch (err) {
      state = 'listening';
      await close();
      throw err;
    }
    let sweeps = 0;
    sweepTimer = setInterval(() => {
      const now = clock();
      sessions.sweep(now);
      gcp?.sweep(now);
      void report.flush(now);
      if (++sweeps % PRUNE_EVERY_SWEEPS === 0) {
        shared.throttle.prune(now);
        shared.jtis?.prune(now);
      }
    }, SWEEP_INTERVAL_MS);
    sweepTimer.unref();
    try {
      listeners = opts.serve === false ? [] : await startListeners(config, onConnection, (peer, problem) => {
        metrics.closed('proxy_header_invalid');
        log.info({ remoteAddress: peer, problem }, 'PROXY header missing or malformed; closing the connection');
      });
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
    for (const settle of [...pendingCommands.values()]) settle('offline');
    unsubscribeFeedState?.();
    for (const client of allClients(aedes)) {
      const p = sessions.principalOf(client);
      if (p !== undefined) ender.endSession(client, p, 'broker_closing');
    }
    const shutdown = Promise.all([
      new Promise<void>((resolve) => aedes.close(() => resolve())),
      ...listeners.map((l) => l.close()),
    ]);
    await waitAtMost(shutdown, SESSIONS_CLOSE_DEADLINE_MS);
    await shared.stop().catch((err: unknown) => log.error({ err }, 'leaving the cluster failed'));
    // every pending refusal record and summary, and the last status batch, before the registry closes
    await Promise.all([report.flush(Number.POSITIVE_INFINITY), status.close()]);
    credentials.clear();
    verifiedTokens.clear();
    await verifyPool?.close();
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
    messaging: { ...messaging, sendGcpCommand },
    get sessionCount() {
      return sessions.size;
    },
    nodeId: shared.nodeId ?? null,
    verifyPool,
    listen,
    close,
  };
}
