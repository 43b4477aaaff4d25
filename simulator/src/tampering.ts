/**
 * The "tampering broker" rogue (docs/simulator.md §Signed fleets): a service account allowed to
 * read and publish the fleet's telemetry — what a compromised broker, a bridge or a data-lake
 * loader can do — re-publishes altered copies of the devices' signed messages. The simulator's
 * counting service account verifies every message it receives (protocol.md §Signed messages); every
 * copy must be refused there. The rogue uses only the SDK's public API, like any service.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { signDeviceMessage, type ServiceClient } from '@latchkey/device-sdk';

/**
 * - `altered`: the claims' `body` replaced (other telemetry), header and signature kept;
 * - `moved`: the exact message re-published on the same topic of another device;
 * - `forged`: a new message for the device, signed with the rogue's own key;
 * - `replayed`: the exact message re-published on its own topic.
 */
export const TAMPER_KINDS = ['altered', 'moved', 'forged', 'replayed'] as const;
export type TamperKind = (typeof TAMPER_KINDS)[number];

/** `devices/{id}/telemetry` and `devices/{id}/telemetry/<any>` (protocol.md §Topics). */
const TELEMETRY_TOPIC = /^devices\/([^/]+)\/telemetry(?:\/.*)?$/;

const keyOf = (topic: string, payload: Buffer | string) => `${topic}\0${createHash('sha256').update(payload).digest('base64')}`;

/**
 * Tampers with the first `budget` device messages it receives, the kinds in turn, and keeps the
 * copies it published so that a consumer's refusals can be matched to them.
 *
 * @example
 * ```ts
 * const rogue = new TamperingBroker({ client, privateKey, deviceIds, budget: 20 });
 * await client.subscribe('devices/+/telemetry/#', (topic, payload) => rogue.handle(topic, payload));
 * // at the consumer, for every refused message:
 * if (rogue.claim(topic, payload)) detected++;
 * ```
 */
export class TamperingBroker {
  readonly #client: ServiceClient;
  readonly #privateKey: KeyObject;
  readonly #deviceIds: readonly string[];
  readonly #budget: number;
  /** copies published and not yet matched to a refusal: (topic, sha-256 of payload) → count */
  readonly #unclaimed = new Map<string, number>();
  /** every copy this rogue published (so that it never tampers with its own copies) */
  readonly #own = new Set<string>();
  readonly #byKind = new Map<TamperKind, number>();
  #taken = 0;
  #published = 0;
  #failed = 0;
  #detected = 0;
  #pending = 0;

  constructor(o: { client: ServiceClient; privateKey: KeyObject; deviceIds: readonly string[]; budget: number }) {
    this.#client = o.client;
    this.#privateKey = o.privateKey;
    this.#deviceIds = o.deviceIds;
    this.#budget = o.budget;
  }

  /** Copies the broker acknowledged. */
  get published(): number {
    return this.#published;
  }

  /** Copies a consumer refused ({@link claim}). */
  get detected(): number {
    return this.#detected;
  }

  /** True when no copy is being made or published. */
  get settled(): boolean {
    return this.#pending === 0;
  }

  /** Copies published, by kind. */
  get byKind(): Record<TamperKind, number> {
    return Object.fromEntries(TAMPER_KINDS.map((k) => [k, this.#byKind.get(k) ?? 0])) as Record<TamperKind, number>;
  }

  /** Publishes that failed (the broker closed the rogue's connection, ...). */
  get failed(): number {
    return this.#failed;
  }

  /** A message the rogue received (never throws: the payload is untrusted). */
  handle(topic: string, payload: Buffer): void {
    if (this.#taken >= this.#budget || this.#own.has(keyOf(topic, payload))) return;
    const kind = TAMPER_KINDS[this.#taken % TAMPER_KINDS.length]!;
    const copy = this.#copy(kind, topic, payload);
    if (copy === null) return;
    this.#taken++;
    this.#pending++;
    void copy
      .then(async (c) => {
        const key = keyOf(c.topic, c.payload);
        this.#own.add(key);
        this.#unclaimed.set(key, (this.#unclaimed.get(key) ?? 0) + 1);
        await this.#client.publish(c.topic, c.payload, { qos: 1 });
        this.#published++;
        this.#byKind.set(kind, (this.#byKind.get(kind) ?? 0) + 1);
      })
      .catch(() => this.#failed++)
      .finally(() => this.#pending--);
  }

  /**
   * Called by the consumer for a message it refused: true (and counted as detected) when it is one
   * of this rogue's copies not yet matched. A replayed copy has the original's bytes: whichever of
   * the two arrives second is refused, and one refusal is matched.
   */
  claim(topic: string, payload: Buffer | string): boolean {
    const key = keyOf(topic, payload);
    const n = this.#unclaimed.get(key) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.#unclaimed.delete(key);
    else this.#unclaimed.set(key, n - 1);
    this.#detected++;
    return true;
  }

  #copy(kind: TamperKind, topic: string, payload: Buffer): Promise<{ topic: string; payload: Buffer | string }> | null {
    const device = TELEMETRY_TOPIC.exec(topic)?.[1];
    const parts = payload.toString('latin1').split('.');
    if (device === undefined || parts.length !== 3) return null;
    const [header, claims, signature] = parts as [string, string, string];
    switch (kind) {
      case 'altered': {
        let c: Record<string, unknown>;
        try {
          c = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as Record<string, unknown>;
        } catch {
          return null;
        }
        const body = Buffer.from(JSON.stringify({ seq: c.seq, ts: c.iat, tampered: true, celsius: 99 })).toString('base64url');
        return Promise.resolve({ topic, payload: `${header}.${Buffer.from(JSON.stringify({ ...c, body })).toString('base64url')}.${signature}` });
      }
      case 'moved': {
        const others = this.#deviceIds.filter((id) => id !== device);
        if (others.length === 0) return null;
        const other = others[this.#taken % others.length]!;
        // the same topic with the other device's id in its device level (devices/{id}/telemetry[/…])
        const levels = topic.split('/');
        levels[1] = other;
        return Promise.resolve({ topic: levels.join('/'), payload });
      }
      case 'forged':
        return signDeviceMessage({ deviceId: device, topic, payload: { seq: 2 ** 52 - this.#taken, ts: Date.now(), forged: true }, seq: 2 ** 52 - this.#taken, privateKey: this.#privateKey }).then(
          (jws) => ({ topic, payload: jws }),
        );
      case 'replayed':
        return Promise.resolve({ topic, payload });
    }
  }
}
