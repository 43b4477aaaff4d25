import type { Plan } from './plan.ts';
import type { RegistryChange } from './types.ts';

/**
 * The registry change feed (protocol.md §MQTT CONNECT: block, delete, key removal end live sessions).
 * Listeners get each committed change once, in commit order. A listener that throws never breaks
 * the registry or the other listeners.
 */
export class ChangeFeed {
  readonly #listeners = new Set<(change: RegistryChange) => void>();
  readonly #onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Adds a listener; returns its unsubscribe function. */
  subscribe(listener: (change: RegistryChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    // Wrap so subscribing the same function twice gives two independent subscriptions.
    const entry = (change: RegistryChange): void => listener(change);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  deliver(changes: readonly RegistryChange[]): void {
    for (const change of changes) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(change);
        } catch (err) {
          this.#onListenerError(err);
        }
      }
    }
  }
}

/**
 * `down`: the feed lost its source (changes may be missed until it is back). `resynced`: it is back
 * and has delivered everything it missed. `full_resync`: it is back but could not replay everything
 * (the outbox was pruned past it): whoever caches registry data drops it and re-checks what it
 * decided with it (the broker re-checks every live session).
 */
export type FeedState = 'down' | 'resynced' | 'full_resync';

/** What a registry's user learns about its change feed (`registry.feed`). */
export interface FeedHealth {
  /** ms the feed has been down, 0 while it is up and caught up (SQLite: always 0) */
  downForMs(): number;
  /** resolves once every change committed before the call has been delivered to this process's listeners */
  sync(): Promise<void>;
  /** state changes of the feed; returns the unsubscribe function */
  onState(listener: (state: FeedState) => void): () => void;
}

/** A backend's side of the feed: how changes travel with their transaction and reach the listeners. */
export interface FeedBackend extends FeedHealth {
  /**
   * PostgreSQL: a plan that appends the write's changes to the outbox inside its transaction and
   * resolves the last sequence number. SQLite: null (changes stay in this process).
   */
  readonly append: ((changes: readonly RegistryChange[], at: number) => Plan<number>) | null;
  /** After the write committed: deliver (SQLite), or wait until the feed has delivered `seq` here (PostgreSQL). */
  committed(changes: readonly RegistryChange[], seq: number | null): Promise<void>;
  close(): Promise<void>;
}

/**
 * SQLite's feed: one process owns the file, so changes are delivered in-process, synchronously,
 * right after their transaction commits; it is never down.
 */
export class InProcessFeed implements FeedBackend {
  readonly append = null;
  readonly #fanout: ChangeFeed;

  constructor(fanout: ChangeFeed) {
    this.#fanout = fanout;
  }

  downForMs(): number {
    return 0;
  }

  async sync(): Promise<void> {}

  onState(): () => void {
    return () => {};
  }

  async committed(changes: readonly RegistryChange[]): Promise<void> {
    this.#fanout.deliver(changes);
  }

  async close(): Promise<void> {}
}
