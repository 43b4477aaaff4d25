import type { RegistryChange } from './types.ts';

/**
 * The registry change feed (protocol.md §MQTT CONNECT: block, delete, key removal end live sessions).
 * Changes are delivered synchronously, after the transaction that made them commits, in order.
 * A listener that throws never breaks the registry or the other listeners.
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
