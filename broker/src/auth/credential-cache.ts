import { publicKeyFromSpkiDer, type TopicAcl, type VerifiableCredential } from '@latchkey/device-sdk/protocol';
import type { BrokerRegistryPort } from '../registry-port.ts';

/** What the broker keeps about a principal between connects: long-lived KeyObjects, never re-imported. */
export interface CachedPrincipal {
  readonly kind: 'device' | 'service';
  readonly principal: string;
  readonly blocked: boolean;
  readonly acl: TopicAcl | null;
  readonly credentials: readonly VerifiableCredential[];
}

/**
 * An LRU of principals with their credentials as `KeyObject`s, filled from
 * `registry.findPrincipal` and invalidated by the change feed (architecture.md §Library facts: a map lookup plus
 * verify, never a JWK set per connect; bounded, because a KeyObject costs ~3.4 KB).
 * Unknown principals are not cached: registering one needs no invalidation.
 *
 * @example
 * ```ts
 * const cache = new CredentialCache(registry, 2048, (err, p) => log.error({ err, principal: p }, 'bad stored key'));
 * cache.get('thermo-1')?.credentials
 * ```
 */
export class CredentialCache {
  readonly #registry: BrokerRegistryPort;
  readonly #capacity: number;
  readonly #onBadKey: (err: unknown, principal: string, kid: string) => void;
  readonly #entries = new Map<string, CachedPrincipal>();

  constructor(registry: BrokerRegistryPort, capacity: number, onBadKey: (err: unknown, principal: string, kid: string) => void) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError('capacity must be a positive integer');
    this.#registry = registry;
    this.#capacity = capacity;
    this.#onBadKey = onBadKey;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The principal with its credentials, or null when the registry does not know it. */
  get(principal: string): CachedPrincipal | null {
    const hit = this.#entries.get(principal);
    if (hit !== undefined) {
      // most recently used goes to the end of the Map's insertion order
      this.#entries.delete(principal);
      this.#entries.set(principal, hit);
      return hit;
    }
    const record = this.#registry.findPrincipal(principal);
    if (record === null) return null;
    const credentials: VerifiableCredential[] = [];
    for (const c of record.credentials) {
      try {
        credentials.push({ kid: c.kid, key: publicKeyFromSpkiDer(c.spkiDer), expiresAt: c.expiresAt });
      } catch (err) {
        // a stored key that no longer parses can never verify: skip it, report it
        this.#onBadKey(err, principal, c.kid);
      }
    }
    const entry: CachedPrincipal = Object.freeze({
      kind: record.kind,
      principal: record.principal,
      blocked: record.blocked,
      acl: record.acl === null ? null : Object.freeze({ publish: [...record.acl.publish], subscribe: [...record.acl.subscribe] }),
      credentials: Object.freeze(credentials),
    });
    if (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(principal, entry);
    return entry;
  }

  /** Forget a principal (registry change feed). */
  invalidate(principal: string): void {
    this.#entries.delete(principal);
  }

  clear(): void {
    this.#entries.clear();
  }
}
