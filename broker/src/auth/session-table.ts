import type { TopicPrincipal } from '@latchkey/device-sdk/protocol';
import type { Client } from 'aedes';

/** The verified principal attached to a client in `authenticate` (architecture.md §Library facts: a WeakMap<Client, Principal>). */
export interface SessionPrincipal {
  readonly kind: 'device' | 'service';
  /** device id or `svc:{name}`: the registry key and the token's `sub` */
  readonly principal: string;
  readonly clientId: string;
  /** what the topic rules of protocol.md §Topics need */
  readonly topics: TopicPrincipal;
  /** the credential that verified the token */
  readonly kid: string;
  /** epoch ms: token `exp` + clock tolerance; the session ends here */
  readonly endsAt: number;
}

/** Why the broker ended a live session. */
export type SessionEndReason = 'token_expired' | 'principal_blocked' | 'principal_deleted' | 'credential_removed' | 'session_taken_over';

/**
 * The live sessions and their principals. The principal stays readable (WeakMap) after a
 * session closed, because aedes still authorizes the will and persisted subscriptions then;
 * the live set drops closed clients on disconnect and on every sweep.
 *
 * @example
 * ```ts
 * const sessions = new SessionTable((client, reason) => { client.close(); });
 * setInterval(() => sessions.sweep(clock()), 250);
 * ```
 */
export class SessionTable {
  readonly #principals = new WeakMap<Client, SessionPrincipal>();
  readonly #live = new Map<Client, SessionPrincipal>();
  readonly #end: (client: Client, principal: SessionPrincipal, reason: SessionEndReason) => void;

  constructor(end: (client: Client, principal: SessionPrincipal, reason: SessionEndReason) => void) {
    this.#end = end;
  }

  /** Live sessions (authenticated, not yet seen closed). */
  get size(): number {
    return this.#live.size;
  }

  attach(client: Client, principal: SessionPrincipal): void {
    this.#principals.set(client, principal);
    this.#live.set(client, principal);
  }

  principalOf(client: Client | null): SessionPrincipal | undefined {
    return client === null ? undefined : this.#principals.get(client);
  }

  detach(client: Client): void {
    this.#live.delete(client);
  }

  /** protocol.md §MQTT CONNECT: a live session ends when its token does (exp + tolerance). */
  sweep(now: number): number {
    let ended = 0;
    for (const [client, p] of this.#live) {
      if (client.closed) {
        this.#live.delete(client);
      } else if (p.endsAt <= now) {
        this.#live.delete(client);
        this.#end(client, p, 'token_expired');
        ended++;
      }
    }
    return ended;
  }

  /** Ends every live session whose principal matches (block, delete, credential removal). */
  endWhere(match: (p: SessionPrincipal) => boolean, reason: SessionEndReason): number {
    let ended = 0;
    for (const [client, p] of this.#live) {
      if (!match(p)) continue;
      this.#live.delete(client);
      if (!client.closed) {
        this.#end(client, p, reason);
        ended++;
      }
    }
    return ended;
  }

  /** Every live client (for shutdown). */
  clients(): Client[] {
    return [...this.#live.keys()];
  }
}
