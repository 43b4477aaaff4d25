import type { BrokerMetrics } from '../broker-metrics.ts';
import type { BrokerRegistryPort } from '../registry-port.ts';
import type { AuthenticateDeps } from './authenticate.ts';
import { RefusalLog } from './refusal-log.ts';

const DONE: Promise<void> = Promise.resolve();

type Log = { debug(obj: object, msg: string): void; info(obj: object, msg: string): void; error(obj: object, msg: string): void };

/**
 * Where the outcome of every CONNECT goes (protocol.md §MQTT CONNECT): accepted and refused counts
 * and verify times to the metrics at once; a refusal's internal reason to the log and, through the
 * bounded {@link RefusalLog}, to the registry (the device's `lastError`, the audit log), never to
 * the client. Nothing is written to the registry on the connect path: `flush` writes what was
 * collected, from the broker's sweep timer and at close.
 *
 * @example
 * ```ts
 * const report = reportConnects({ metrics, log, registry, windowMs: 60_000 });
 * const authenticate = createAuthenticate({ ...deps, ...report.hooks });
 * setInterval(() => report.flush(clock()), 250);
 * ```
 */
export function reportConnects(o: {
  metrics: Pick<BrokerMetrics, 'connectAccepted' | 'connectRefused' | 'observeVerify'>;
  log: Log;
  registry: Pick<BrokerRegistryPort, 'recordAuthFailure' | 'recordLastErrors'>;
  /** the window repeated refusals are summarized over */
  windowMs: number;
}): { hooks: Pick<AuthenticateDeps, 'observeVerify' | 'onAccepted' | 'onRefused'>; flush(now: number): Promise<void> } {
  const { metrics, log, registry } = o;
  const refusals = new RefusalLog({ windowMs: o.windowMs });
  const hooks: Pick<AuthenticateDeps, 'observeVerify' | 'onAccepted' | 'onRefused'> = {
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
  };
  /** Writes what was collected; resolves when the writes are done (a failure is logged, never thrown). */
  const flush = (now: number): Promise<void> => {
    const { records, lastErrors } = refusals.drain(now);
    if (records.length === 0 && lastErrors.length === 0) return DONE;
    const writes: Promise<void>[] = [];
    for (const record of records) {
      if (record.repeated !== undefined) log.info({ ...record }, 'more connects refused in the last minute');
      writes.push(registry.recordAuthFailure(record).catch((err: unknown) => log.error({ err }, 'recording an auth failure failed')));
    }
    if (lastErrors.length > 0) writes.push(registry.recordLastErrors(lastErrors).catch((err: unknown) => log.error({ err }, 'recording auth failures failed')));
    return Promise.all(writes).then(() => undefined);
  };
  return { hooks, flush };
}
