import { parsePrincipal } from '@latchkey/device-sdk/protocol';
import type { Aedes, Client } from 'aedes';
import { clientById, dropWill, type BrokerPersistence } from './aedes-internals.ts';
import type { CredentialCache } from './auth/credential-cache.ts';
import type { SessionEndReason, SessionPrincipal, SessionTable } from './auth/session-table.ts';
import type { BrokerMetrics } from './broker-metrics.ts';
import type { BrokerRegistryPort, RegistryChange } from './registry-port.ts';

export interface SessionEnderDeps {
  aedes: Aedes;
  /** the persistence aedes was given */
  persistence: BrokerPersistence;
  sessions: SessionTable;
  credentials: CredentialCache;
  metrics: Pick<BrokerMetrics, 'closed'>;
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** forgets a deleted device's stored session (subscriptions, queue, wills, QoS 2 state), wherever it is stored */
  forget: (clientId: string) => Promise<void>;
}

export interface SessionEnder {
  /** The broker ends a session itself: no will (see createBroker), then close. */
  endSession(client: Client, p: SessionPrincipal, reason: SessionEndReason | 'broker_closing'): void;
  /**
   * The registry change feed: drop cached credentials; end the sessions a block, delete or key
   * removal revokes; and forget a deleted device's persistent session.
   */
  onRegistryChange(change: RegistryChange): void;
  /**
   * A newer session with this client id was accepted, here (`except` is it) or on another node:
   * the older one on this broker, which aedes closes next, goes without its will. A takeover is
   * the same device back, not a failure.
   */
  supersede(clientId: string, except?: Client): void;
  /**
   * Supersedes the local session a node announces it took over (aedes's `$SYS/<id>/new/clients`).
   * Call it before `aedes.listen()`: aedes's own listener on the topic, which closes the older
   * session, must come after this one.
   */
  watchTakeovers(): void;
  /**
   * After a full resync of the change feed (changes were lost): drop every cached credential and
   * re-check each live session against the registry, ending those whose principal is gone or
   * blocked, or whose key was removed. Resolves the number ended; a session whose principal cannot
   * be read (the database failed again) is left alone and logged.
   */
  recheckAll(findPrincipal: BrokerRegistryPort['findPrincipal']): Promise<number>;
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
  const { aedes, persistence, sessions, credentials, metrics, log } = deps;

  function supersede(clientId: string, except?: Client): void {
    const older = clientById(aedes, clientId);
    if (older === undefined || older === except) return;
    if (dropWill(older)) persistence.delWill({ id: clientId, brokerId: aedes.id }).catch(() => undefined);
  }

  function endSession(client: Client, p: SessionPrincipal, reason: SessionEndReason | 'broker_closing'): void {
    if (dropWill(client)) persistence.delWill({ id: client.id, brokerId: aedes.id }).catch(() => undefined);
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
      // A deleted device leaves nothing behind: otherwise a device registered later under the same
      // id would resume the old session (`sessionPresent`) and receive the old device's commands.
      // A device id is its one client id; after the close above has run its synchronous part.
      if (change.type === 'principal_deleted' && parsePrincipal(change.principal)?.kind === 'device') {
        setImmediate(() => {
          deps.forget(change.principal).catch((err: unknown) => log.error({ err, principal: change.principal }, 'forgetting a deleted device session failed'));
        });
      }
    } else if (change.type === 'credential_removed') {
      sessions.endWhere((p) => p.principal === change.principal && p.kid === change.kid, 'credential_removed');
    }
  }

  async function recheckAll(findPrincipal: BrokerRegistryPort['findPrincipal']): Promise<number> {
    credentials.clear();
    const live = new Map<string, SessionPrincipal[]>();
    for (const client of sessions.clients()) {
      const p = sessions.principalOf(client);
      if (p !== undefined) live.set(p.principal, [...(live.get(p.principal) ?? []), p]);
    }
    let ended = 0;
    for (const principal of live.keys()) {
      let record: Awaited<ReturnType<typeof findPrincipal>>;
      try {
        record = await findPrincipal(principal);
      } catch (err) {
        log.error({ err, principal }, 're-checking a live session after a full resync failed');
        continue;
      }
      if (record === null) ended += sessions.endWhere((p) => p.principal === principal, 'principal_deleted');
      else if (record.blocked) ended += sessions.endWhere((p) => p.principal === principal, 'principal_blocked');
      else {
        const kids = new Set(record.credentials.map((c) => c.kid));
        ended += sessions.endWhere((p) => p.principal === principal && !kids.has(p.kid), 'credential_removed');
      }
    }
    log.info({ sessions: live.size, ended }, 'live sessions re-checked after a full resync of the registry change feed');
    return ended;
  }


  function watchTakeovers(): void {
    aedes.subscribe(
      '$SYS/+/new/clients',
      (packet, done) => {
        if (!packet.topic.startsWith(`$SYS/${aedes.id}/`)) supersede(String(packet.payload));
        done();
      },
      () => undefined,
    );
  }

  return { endSession, onRegistryChange, supersede, watchTakeovers, recheckAll };
}
