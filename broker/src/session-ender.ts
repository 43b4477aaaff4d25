import type { Aedes, Client } from 'aedes';
import type { CredentialCache } from './auth/credential-cache.ts';
import type { SessionEndReason, SessionPrincipal, SessionTable } from './auth/session-table.ts';
import type { BrokerMetrics } from './broker-metrics.ts';
import type { RegistryChange } from './registry-port.ts';

/** aedes internals this module relies on (present at runtime, missing from its typings). */
interface AedesPersistenceInternals {
  /** set by `aedes.listen()`, so read at the time of use */
  persistence: { delWill(client: { id: string; brokerId: string }): Promise<unknown> };
}
interface ClientInternals {
  will: unknown;
  _will: unknown;
}

export interface SessionEnderDeps {
  aedes: Aedes;
  sessions: SessionTable;
  credentials: CredentialCache;
  metrics: Pick<BrokerMetrics, 'closed'>;
  log: { info(obj: object, msg: string): void };
}

export interface SessionEnder {
  /** The broker ends a session itself: no will (see createBroker), then close. */
  endSession(client: Client, p: SessionPrincipal, reason: SessionEndReason | 'broker_closing'): void;
  /** The registry change feed: drop cached credentials; end the sessions a block, delete or key removal revokes. */
  onRegistryChange(change: RegistryChange): void;
}

/**
 * How the broker ends sessions on its own: token expiry (the session table's sweep), the
 * registry change feed (block, delete, credential removal) and shutdown. The will is
 * suppressed in each case — the device did not fail, and a revoked principal must not get a
 * last message out.
 *
 * @example
 * ```ts
 * const ender = createSessionEnder({ aedes, sessions, credentials, metrics, log });
 * const unsubscribe = registry.onChange(ender.onRegistryChange);
 * ```
 */
export function createSessionEnder(deps: SessionEnderDeps): SessionEnder {
  const { aedes, sessions, credentials, metrics, log } = deps;

  function endSession(client: Client, p: SessionPrincipal, reason: SessionEndReason | 'broker_closing'): void {
    const c = client as unknown as ClientInternals;
    const internals = aedes as unknown as AedesPersistenceInternals;
    if (c.will) internals.persistence.delWill({ id: client.id, brokerId: aedes.id }).catch(() => undefined);
    c.will = null;
    c._will = null;
    if (reason !== 'broker_closing') {
      metrics.closed(reason);
      log.info({ principal: p.principal, clientId: p.clientId, reason }, 'session ended by the broker');
    }
    client.close();
  }

  function onRegistryChange(change: RegistryChange): void {
    credentials.invalidate(change.principal);
    if (change.type === 'principal_blocked' || change.type === 'principal_deleted') {
      sessions.endWhere((p) => p.principal === change.principal, change.type);
    } else if (change.type === 'credential_removed') {
      sessions.endWhere((p) => p.principal === change.principal && p.kid === change.kid, 'credential_removed');
    }
  }

  return { endSession, onRegistryChange };
}
