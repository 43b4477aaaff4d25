import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { publicKeyFromSpkiDer, type TopicAcl, type VerifiableCredential } from '@latchkey/device-sdk/protocol';
import type { BrokerRegistryPort, GcpBinding, PrincipalRecord } from '../registry-port.ts';

/** What the broker keeps about a principal between connects: long-lived KeyObjects, never re-imported. */
export interface CachedPrincipal {
  readonly kind: 'device' | 'service';
  readonly principal: string;
  readonly blocked: boolean;
  readonly acl: TopicAcl | null;
  readonly credentials: readonly VerifiableCredential[];
  /** the Cloud IoT Core binding of an imported device, else null */
  readonly gcp: GcpBinding | null;
  /** devices: metadata `signedTelemetry: "required"` (protocol.md §Signed messages at the broker) */
  readonly signedTelemetry: boolean;
}

/** What a lookup answers: the principal (null when unknown) and the credentials to verify its token against. */
export interface CacheEntry {
  readonly record: CachedPrincipal | null;
  /** the principal's own, or for an unknown principal its decoy */
  readonly credentials: readonly VerifiableCredential[];
}

/** A registry lookup in flight; `stale` when the principal changed (or the cache was cleared) meanwhile. */
interface Loading {
  readonly promise: Promise<CacheEntry>;
  stale: boolean;
}

/** Reads again at most this often when the principal keeps changing while it is being read. */
const MAX_RELOADS = 3;

/**
 * An LRU of principals with their credentials as `KeyObject`s, filled from
 * `registry.findPrincipal` and invalidated by the change feed (architecture.md §Library facts: a map lookup plus
 * verify, never a JWK set per connect; bounded, because a KeyObject costs ~3.4 KB).
 *
 * A hit is synchronous and allocates nothing (`peek`: the stored entry itself); a miss reads the
 * registry (`load`: one query in flight per principal, however many connects wait on it). A change
 * that arrives while the query is in flight makes it read again, so an entry never predates the
 * last change the feed delivered. A registry failure rejects (the broker refuses with CONNACK 3).
 *
 * Constant work for unknown principals (issue 16, finding 3: connect timing told whether an id
 * exists): an unknown id is remembered in an LRU of its own (the change feed's
 * `principal_created` forgets it), so a repeated probe costs a map hit like a known id does; its
 * entry holds a decoy credential, a real P-256 key (whose private half was discarded) imported
 * from DER like a known id's key, which the broker verifies an unknown principal's token against,
 * so the signature check runs either way.
 *
 * @example
 * ```ts
 * const cache = new CredentialCache(registry, 2048, (err, p) => log.error({ err, principal: p }, 'bad stored key'));
 * const entry = cache.peek('thermo-1') ?? (await cache.load('thermo-1')); // credentials: a decoy when record is null
 * ```
 */
export class CredentialCache {
  readonly #registry: Pick<BrokerRegistryPort, 'findPrincipal'>;
  readonly #capacity: number;
  readonly #onBadKey: (err: unknown, principal: string, kid: string) => void;
  readonly #entries = new Map<string, CacheEntry>();
  /** principals the registry does not know, most recently probed last, each with its own decoy entry */
  readonly #unknown = new Map<string, CacheEntry>();
  readonly #loading = new Map<string, Loading>();
  readonly #decoySpki: Uint8Array;
  /** The kid of every decoy credential: random per cache, so no token can name it. */
  readonly decoyKid: string;

  /**
   * `decoyKey`: the public key to verify unknown principals' tokens against; by default a fresh
   * P-256 key whose private key is never kept (tests inject one whose private key they hold).
   */
  constructor(
    registry: Pick<BrokerRegistryPort, 'findPrincipal'>,
    capacity: number,
    onBadKey: (err: unknown, principal: string, kid: string) => void,
    decoyKey?: KeyObject,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError('capacity must be a positive integer');
    this.#registry = registry;
    this.#capacity = capacity;
    this.#onBadKey = onBadKey;
    const key = decoyKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    if (key.type !== 'public' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new TypeError('decoyKey must be a P-256 public key');
    }
    this.#decoySpki = new Uint8Array(key.export({ type: 'spki', format: 'der' }));
    // a kid nobody can name: a token's `kid` header must not pick the decoy where it picks nothing for a known id
    this.decoyKid = randomBytes(18).toString('base64url');
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The cached entry of a principal, known or unknown, marked most recently used; undefined on a
   * miss. Synchronous and allocation-free: the connect path's hit.
   */
  peek(principal: string): CacheEntry | undefined {
    const hit = this.#entries.get(principal);
    if (hit !== undefined) {
      // most recently used goes to the end of the Map's insertion order
      this.#entries.delete(principal);
      this.#entries.set(principal, hit);
      return hit;
    }
    const decoy = this.#unknown.get(principal);
    if (decoy !== undefined) {
      this.#unknown.delete(principal);
      this.#unknown.set(principal, decoy);
    }
    return decoy;
  }

  /**
   * The principal, or null, together with the credentials to verify its token against: its own,
   * or for an unknown principal a decoy built by the same code from a record of the same shape
   * (its key imported from DER like a known principal's), so the first lookup, the first
   * verification and every later one cost the same either way. Rejects when the registry fails.
   */
  load(principal: string): Promise<CacheEntry> {
    const cached = this.peek(principal);
    if (cached !== undefined) return Promise.resolve(cached);
    const inFlight = this.#loading.get(principal);
    if (inFlight !== undefined) return inFlight.promise;
    const loading: Loading = { promise: this.#read(principal, () => loading), stale: false };
    this.#loading.set(principal, loading);
    const forget = () => {
      if (this.#loading.get(principal) === loading) this.#loading.delete(principal);
    };
    loading.promise.then(forget, forget);
    return loading.promise;
  }

  async #read(principal: string, self: () => Loading): Promise<CacheEntry> {
    for (let reads = 1; ; reads++) {
      const found = await this.#registry.findPrincipal(principal);
      const loading = self();
      // changed meanwhile: what was read may predate the change (a block); read again
      if (loading.stale && reads < MAX_RELOADS) {
        loading.stale = false;
        continue;
      }
      const entry = this.#entryOf(found ?? this.#decoyRecord(principal), found !== null);
      // still stale after MAX_RELOADS: answer this connect, but do not keep what may be outdated
      if (!loading.stale) remember(found === null ? this.#unknown : this.#entries, principal, entry, this.#capacity);
      return entry;
    }
  }

  /** What the registry would answer for a principal with one credential: the decoy key. */
  #decoyRecord(principal: string): PrincipalRecord {
    return { kind: 'device', principal, blocked: false, acl: null, credentials: [{ kid: this.decoyKid, spkiDer: new Uint8Array(this.#decoySpki), expiresAt: null }], signedTelemetry: false };
  }

  /** A registry record as the cache keeps it: KeyObjects imported once, frozen. */
  #entryOf(record: PrincipalRecord, known: boolean): CacheEntry {
    const credentials: VerifiableCredential[] = [];
    for (const c of record.credentials) {
      try {
        credentials.push({ kid: c.kid, key: publicKeyFromSpkiDer(c.spkiDer), expiresAt: c.expiresAt });
      } catch (err) {
        // a stored key that no longer parses can never verify: skip it, report it
        this.#onBadKey(err, record.principal, c.kid);
      }
    }
    const frozen = Object.freeze(credentials);
    const principal: CachedPrincipal = Object.freeze({
      kind: record.kind,
      principal: record.principal,
      blocked: record.blocked,
      acl: record.acl === null ? null : Object.freeze({ publish: [...record.acl.publish], subscribe: [...record.acl.subscribe] }),
      credentials: frozen,
      gcp: record.gcp == null ? null : Object.freeze({ ...record.gcp }),
      signedTelemetry: record.signedTelemetry === true,
    });
    return Object.freeze({ record: known ? principal : null, credentials: frozen });
  }

  /** Forget a principal, known or unknown (registry change feed); a read of it in flight reads again. */
  invalidate(principal: string): void {
    this.#entries.delete(principal);
    this.#unknown.delete(principal);
    const loading = this.#loading.get(principal);
    if (loading !== undefined) loading.stale = true;
  }

  /** Forget everything (a full resync of the change feed, shutdown). */
  clear(): void {
    this.#entries.clear();
    this.#unknown.clear();
    for (const loading of this.#loading.values()) loading.stale = true;
  }
}
/** Adds `key` as the most recent entry of an LRU map of at most `capacity`. */
function remember<V>(map: Map<string, V>, key: string, value: V, capacity: number): void {
  if (map.size >= capacity) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
  map.set(key, value);
}
