import type { KeyObject } from 'node:crypto';
import { DeviceClientError } from '../errors.ts';
import { loadPrivateKeyPem } from '../keys/keys.ts';
import { DEFAULT_TOKEN_RULES, MAX_API_TOKEN_LIFETIME, apiAudience, isDeviceId, servicePrincipal, systemClock, type Clock } from '../protocol/index.ts';
import { mintConnectToken, type Es256Signer } from '../token/mint-token.ts';
import type { DeviceKeyRecord, DeviceKeySource } from '../verify/key-source.ts';
import { withSlash } from './clock-offset.ts';
import { getJson } from './http-json.ts';

/** Options of {@link RegistryKeySource}. */
export interface RegistryKeySourceOptions {
  /** The provisioning API, e.g. `http://127.0.0.1:8080`. */
  provisioningUrl: string;
  /** The service account it authenticates as (protocol.md §Service-account API tokens). */
  serviceName: string;
  /** The account's P-256 private key (KeyObject or PEM). Exactly one of `privateKey` and `sign`. */
  privateKey?: KeyObject | string;
  /** A signer for a key held in a secure element. */
  sign?: Es256Signer;
  /** Names the account's credential in its API tokens. */
  kid?: string;
  /** The broker's audience (API tokens carry `<audience>:api`). Default `latchkey`. */
  audience?: string;
  /** Epoch ms (API tokens are minted with it). Default `Date.now`. */
  clock?: Clock;
  /** A history is used this long before it is fetched again, ms. Default 60000. */
  maxAgeMs?: number;
  /** Two fetches of one device's history are at least this far apart, ms (a later one waits). Default 1000. */
  minRefreshMs?: number;
  /** One request's limit, ms. Default 10000. */
  timeoutMs?: number;
  /** Devices whose history is kept (least recently used forgotten first). Default 10000. */
  maxDevices?: number;
}

interface Cached {
  keys: readonly DeviceKeyRecord[] | null;
  /** epoch ms (the clock), when it was fetched */
  at: number;
}

/** An API token is re-minted after this share of its lifetime. */
const TOKEN_REUSE_SHARE = 0.8;

/**
 * Device key histories from the registry, `GET /v1/devices/{id}/keys` (api.md §Key history), as a
 * service account: authenticated with the account's own key, no admin token (protocol.md
 * §Service-account API tokens). Each history is used for `maxAgeMs`. When the verifier needs a
 * history fetched after a message was signed (a `kid` it does not know, a key that does not
 * verify: a rotation), it is fetched again unless the cached one is that recent, but never twice
 * within `minRefreshMs` for one device (the second waits), so forged messages cannot flood the API.
 * Concurrent asks for one device share one request. An unknown device (404) is cached as unknown.
 *
 * @example
 * ```ts
 * const keys = new RegistryKeySource({ provisioningUrl: 'http://127.0.0.1:8080', serviceName: 'lake', privateKey });
 * const m = await verifyDeviceMessage(topic, payload, { keys, replay });
 * ```
 */
export class RegistryKeySource implements DeviceKeySource {
  readonly #base: string;
  readonly #subject: string;
  readonly #mint: () => Promise<{ token: string; iat: number; exp: number }>;
  readonly #clock: Clock;
  readonly #maxAgeMs: number;
  readonly #minRefreshMs: number;
  readonly #timeoutMs: number;
  readonly #maxDevices: number;
  readonly #cache = new Map<string, Cached>();
  readonly #pending = new Map<string, Promise<Cached>>();
  #token: { token: string; renewAt: number } | null = null;

  constructor(o: RegistryKeySourceOptions) {
    if (o === null || typeof o !== 'object') throw new TypeError('RegistryKeySource: options are required');
    this.#base = withSlash(o.provisioningUrl);
    new URL(this.#base); // TypeError when malformed
    this.#subject = servicePrincipal(o.serviceName); // TypeError for a bad name
    this.#clock = o.clock ?? systemClock;
    const privateKey = typeof o.privateKey === 'string' ? loadPrivateKeyPem(o.privateKey) : o.privateKey;
    const audience = apiAudience(o.audience ?? DEFAULT_TOKEN_RULES.audience);
    const mintOptions = { subject: this.#subject, privateKey, sign: o.sign, kid: o.kid, audience, ttlSeconds: MAX_API_TOKEN_LIFETIME, clock: this.#clock };
    this.#mint = () => mintConnectToken(mintOptions);
    this.#maxAgeMs = nonNegative('maxAgeMs', o.maxAgeMs, 60_000);
    this.#minRefreshMs = nonNegative('minRefreshMs', o.minRefreshMs, 1_000);
    this.#timeoutMs = nonNegative('timeoutMs', o.timeoutMs, 10_000);
    this.#maxDevices = nonNegative('maxDevices', o.maxDevices, 10_000);
  }

  /**
   * The device's key history, or null when the registry does not know the device: the cached one
   * while younger than `maxAgeMs`, or with `fetchedSince` while fetched at or after that time.
   */
  async keysOf(deviceId: string, o: { fetchedSince?: number } = {}): Promise<readonly DeviceKeyRecord[] | null> {
    if (!isDeviceId(deviceId)) return null;
    const usable = (c: Cached | undefined): c is Cached =>
      c !== undefined && (o.fetchedSince === undefined ? this.#clock() - c.at < this.#maxAgeMs : c.at >= o.fetchedSince);
    const cached = this.#cache.get(deviceId);
    if (usable(cached)) return cached.keys;
    const pending = this.#pending.get(deviceId);
    if (pending !== undefined) {
      const shared = await pending;
      if (usable(shared)) return shared.keys;
    }
    let next = this.#pending.get(deviceId);
    if (next === undefined) {
      const last = this.#cache.get(deviceId)?.at;
      const waitMs = last === undefined ? 0 : Math.min(this.#minRefreshMs, Math.max(0, last + this.#minRefreshMs - this.#clock()));
      next = this.#fetch(deviceId, waitMs).finally(() => this.#pending.delete(deviceId));
      this.#pending.set(deviceId, next);
    }
    return (await next).keys;
  }

  async #fetch(deviceId: string, waitMs: number): Promise<Cached> {
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    const at = this.#clock();
    let keys: readonly DeviceKeyRecord[] | null;
    try {
      const body = await getJson(new URL(`v1/devices/${encodeURIComponent(deviceId)}/keys`, this.#base), this.#timeoutMs, {
        authorization: `Bearer ${await this.#apiToken()}`,
      });
      keys = parseHistory(body, deviceId);
    } catch (err) {
      if (!(err instanceof DeviceClientError) || err.status !== 404) throw err;
      keys = null;
    }
    this.#cache.delete(deviceId);
    if (this.#cache.size >= this.#maxDevices) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    const entry = { keys, at };
    this.#cache.set(deviceId, entry);
    return entry;
  }

  /** An API token (≤ 300 s), reused for most of its lifetime. */
  async #apiToken(): Promise<string> {
    const now = this.#clock();
    if (this.#token !== null && now < this.#token.renewAt) return this.#token.token;
    let minted: { token: string; iat: number; exp: number };
    try {
      minted = await this.#mint();
    } catch (cause) {
      throw new DeviceClientError('signing_failed', 'could not sign an API token', { cause });
    }
    this.#token = { token: minted.token, renewAt: now + (minted.exp - minted.iat) * 1000 * TOKEN_REUSE_SHARE };
    return minted.token;
  }
}

function nonNegative(name: string, v: unknown, dflt: number): number {
  const n = v ?? dflt;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new TypeError(`${name} must be a non-negative integer`);
  return n;
}

const epochOrNull = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isSafeInteger(v));

/** api.md §Key history: `{deviceId, keys: [{kid, publicKey, createdAt, removedAt, expiresAt, …}]}`. */
function parseHistory(body: unknown, deviceId: string): DeviceKeyRecord[] {
  const b = body as { deviceId?: unknown; keys?: unknown } | null;
  if (b === null || typeof b !== 'object' || b.deviceId !== deviceId || !Array.isArray(b.keys)) {
    throw new DeviceClientError('invalid_response', 'GET /v1/devices/{id}/keys did not return {deviceId, keys}');
  }
  return b.keys.map((k: unknown) => {
    const r = k as Record<string, unknown> | null;
    if (
      r === null ||
      typeof r !== 'object' ||
      typeof r.kid !== 'string' ||
      typeof r.publicKey !== 'string' ||
      !epochOrNull(r.createdAt) ||
      !epochOrNull(r.removedAt) ||
      !epochOrNull(r.expiresAt)
    ) {
      throw new DeviceClientError('invalid_response', 'a key of GET /v1/devices/{id}/keys is not {kid, publicKey, createdAt, removedAt, expiresAt}');
    }
    return { kid: r.kid, publicKey: r.publicKey, createdAt: r.createdAt, removedAt: r.removedAt, expiresAt: r.expiresAt };
  });
}
