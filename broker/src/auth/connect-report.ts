import type { BrokerMetrics } from '../broker-metrics.ts';
import type { BrokerRegistryPort } from '../registry-port.ts';
import type { AuthenticateDeps } from './authenticate.ts';

/**
 * Where the outcome of every CONNECT goes (protocol.md §MQTT CONNECT): accepted and refused counts
 * and verify times to the metrics; a refusal's internal reason to the log and to the registry (the
 * device's `lastError`, the audit log), never to the client. A repeated throttled attempt is counted
 * only.
 *
 * @example
 * ```ts
 * const authenticate = createAuthenticate({ ...deps, ...reportConnects({ metrics, log, registry }) });
 * ```
 */
export function reportConnects(o: {
  metrics: Pick<BrokerMetrics, 'connectAccepted' | 'connectRefused' | 'observeVerify'>;
  log: { debug(obj: object, msg: string): void; info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  registry: Pick<BrokerRegistryPort, 'recordAuthFailure'>;
}): Pick<AuthenticateDeps, 'observeVerify' | 'onAccepted' | 'onRefused'> {
  const { metrics, log, registry } = o;
  return {
    observeVerify: (s) => metrics.observeVerify(s),
    onAccepted: (p) => {
      metrics.connectAccepted();
      log.debug({ principal: p.principal, clientId: p.clientId, kid: p.kid }, 'connect accepted');
    },
    onRefused: (failure, notice, cause) => {
      metrics.connectRefused(failure.reason);
      if (cause !== null) log.error({ err: cause, clientId: failure.clientId }, 'authenticate failed unexpectedly');
      if (!notice) return; // a repeated throttled attempt: counted, not audited
      log.info({ ...failure }, 'connect refused');
      try {
        registry.recordAuthFailure(failure);
      } catch (err) {
        log.error({ err }, 'recording an auth failure failed');
      }
    },
  };
}
