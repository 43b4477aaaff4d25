import type { IClientOptions } from 'mqtt';
import type { BackoffOptions } from './backoff.ts';
import type { DeviceClientError } from '../errors.ts';
import type { QueueOverflow } from '../messaging/offline-queue.ts';
import type { Clock } from '../protocol/index.ts';
import type { TokenSource } from '../token/token-source.ts';

/** TLS settings for `mqtts://` and `wss://` broker URLs. */
export interface TlsOptions {
  /** CA certificate(s) to trust, PEM */
  ca?: string | string[] | Buffer | Buffer[];
  /** default true; set false only in tests */
  rejectUnauthorized?: boolean;
  /** SNI / certificate host name, when it differs from the URL host */
  servername?: string;
}

export interface SessionOptions {
  clientId: string;
  username: string;
  /** one or more; validated (session/broker-urls.ts) */
  brokerUrls: readonly string[];
  tokens: TokenSource;
  clock: Clock;
  backoff: Required<BackoffOptions>;
  maxQueuedMessages: number;
  queueOverflow: QueueOverflow;
  /** the first session must be up within this many ms (0 = wait forever) */
  connectTimeoutMs: number;
  /** one attempt waits this long for CONNACK */
  connackTimeoutMs: number;
  keepaliveSeconds: number;
  maxPacketSize: number;
  tls: TlsOptions | undefined;
  /** runs before the first attempt (clock correction); a failure is retried with backoff */
  prepare: (() => Promise<void>) | undefined;
  random: () => number;
}

export interface SessionStats {
  /** deliberate reconnects with a fresh token */
  tokenRefreshes: number;
  /** sessions re-established after an unplanned loss */
  reconnects: number;
  /** CONNECT packets sent */
  connectAttempts: number;
  /** publishes evicted or refused by the bounded offline queue */
  dropped: number;
  /** publishes waiting for a session */
  queued: number;
  /** publishes sent and not yet acknowledged */
  inflight: number;
}

export interface SessionEvents {
  connect: [info: { sessionPresent: boolean }];
  offline: [];
  'token-refresh': [info: { exp: number }];
  error: [err: DeviceClientError];
  close: [err: DeviceClientError | undefined];
  'handler-error': [err: unknown, topic: string];
}

/** mqtt.js options for one persistent MQTT 3.1.1 session whose reconnects the Session drives. */
export function mqttClientOptions(o: SessionOptions, stores: Pick<IClientOptions, 'incomingStore' | 'outgoingStore'>): IClientOptions {
  return {
    manualConnect: true,
    protocolVersion: 4, // protocol.md §MQTT CONNECT: MQTT 3.1.1
    clientId: o.clientId,
    username: o.username, // mqtt-packet refuses a password without a username
    clean: false, // persistent session: QoS 1 messages survive a token-refresh reconnect
    reconnectPeriod: 0, // reconnects are driven here (backoff with jitter, refresh, refusals)
    resubscribe: false, // the SubscriptionTable resubscribes, one filter per SUBSCRIBE
    queueQoSZero: false,
    connectTimeout: o.connackTimeoutMs,
    keepalive: o.keepaliveSeconds,
    ...stores,
    ...(o.tls === undefined ? {} : { ca: o.tls.ca, rejectUnauthorized: o.tls.rejectUnauthorized ?? true, servername: o.tls.servername }),
  };
}
