import type { AuthFailureCode, MessageFailureCode } from '@latchkey/device-sdk/protocol';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { SessionEndReason } from './auth/session-table.ts';

/** Why the broker closed a connection itself (besides session ends). */
export type ConnectionCloseReason = SessionEndReason | 'packet_too_large' | 'publish_denied' | 'signature_refused' | 'proxy_header_invalid';

/** The broker's Prometheus metrics, registered in a Registry shared with provisioning. */
export interface BrokerMetrics {
  connectAccepted(): void;
  connectRefused(reason: AuthFailureCode): void;
  observeVerify(seconds: number): void;
  tokenCacheHit(): void;
  /** A verify thread ended unasked: its connects were refused (CONNACK 3) and it is replaced. */
  verifyThreadFailed(): void;
  dropped(reason: 'offline_queue_full', count: number): void;
  closed(reason: ConnectionCloseReason): void;
  /** A publish on a topic that requires signed messages: verified, or refused with its reason. */
  signedPublish(reason: 'ok' | MessageFailureCode | 'internal_error'): void;
}

/**
 * Creates the `latchkey_broker_*` metrics in `registry`.
 *
 * @example
 * ```ts
 * const metrics = createBrokerMetrics(new Registry(), () => sessions.size);
 * ```
 */
export function createBrokerMetrics(registry: Registry, liveSessions: () => number): BrokerMetrics {
  const registers = [registry];
  const connects = new Counter({
    name: 'latchkey_broker_connects_total',
    help: 'CONNECTs by result, and for refusals the internal reason (never sent to the client)',
    labelNames: ['result', 'reason'] as const,
    registers,
  });
  new Gauge({
    name: 'latchkey_broker_sessions',
    help: 'Live authenticated MQTT sessions',
    registers,
    collect() {
      this.set(liveSessions());
    },
  });
  const verify = new Histogram({
    name: 'latchkey_broker_verify_seconds',
    help: 'Time spent verifying a connect token',
    buckets: [0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.05],
    registers,
  });
  const cacheHits = new Counter({
    name: 'latchkey_broker_verified_token_cache_hits_total',
    help: 'CONNECTs whose token this broker had verified before (no signature check)',
    registers,
  });
  const threadFailures = new Counter({
    name: 'latchkey_broker_verify_thread_failures_total',
    help: 'Verify threads that ended unasked (crash, out of memory); the CONNECTs they held were refused with CONNACK 3 and the thread replaced',
    registers,
  });
  const throttled = new Counter({
    name: 'latchkey_broker_throttled_total',
    help: 'CONNECTs refused because their source address was throttled',
    registers,
  });
  const dropped = new Counter({
    name: 'latchkey_broker_dropped_messages_total',
    help: 'Messages dropped by the broker',
    labelNames: ['reason'] as const,
    registers,
  });
  const closed = new Counter({
    name: 'latchkey_broker_connections_closed_total',
    help: 'Connections the broker closed itself, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const signed = new Counter({
    name: 'latchkey_broker_signed_publishes_total',
    help: 'Publishes on topics that require device-signed messages, by result and, for refusals, the reason (docs/errors.md §Signed message refusals)',
    labelNames: ['result', 'reason'] as const,
    registers,
  });
  const accepted = connects.labels({ result: 'accepted', reason: 'ok' }); // bound once: the hot path
  const verifiedMessages = signed.labels({ result: 'verified', reason: 'ok' }); // per message: bound once
  return {
    connectAccepted: () => accepted.inc(),
    connectRefused: (reason) => {
      connects.inc({ result: 'refused', reason });
      if (reason === 'throttled') throttled.inc();
    },
    observeVerify: (seconds) => verify.observe(seconds),
    tokenCacheHit: () => cacheHits.inc(),
    verifyThreadFailed: () => threadFailures.inc(),
    dropped: (reason, count) => dropped.inc({ reason }, count),
    closed: (reason) => closed.inc({ reason }),
    signedPublish: (reason) => (reason === 'ok' ? verifiedMessages.inc() : signed.inc({ result: 'refused', reason })),
  };
}
