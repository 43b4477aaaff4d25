import type { Clock } from '../protocol/index.ts';

/** A minted connect token and when this process minted it (local clock, ms). */
export interface HeldToken {
  readonly token: string;
  /** the token's `iat`, epoch seconds (server time when a clock offset is applied) */
  readonly iat: number;
  /** the token's `exp`, epoch seconds */
  readonly exp: number;
  /** local clock reading when it was minted, epoch ms */
  readonly mintedAt: number;
}

export interface TokenSourceOptions {
  /** Mints a token; `clockOffsetMs` is added to the local clock for `iat`/`exp`. */
  mint: (clockOffsetMs: number) => Promise<{ token: string; iat: number; exp: number }>;
  clock: Clock;
  /** lifetime the minter uses, seconds (drives how long a held token counts as fresh) */
  ttlSeconds: number;
  clockOffsetMs?: number;
}

/**
 * protocol.md §MQTT CONNECT ends a session at `exp`; MQTT 3.1.1 cannot re-authenticate in-band, so
 * a client reconnects with a fresh token at a random point between 80% and 90% of the lifetime,
 * drawn once per client: a fleet started together does not refresh in lock-step.
 */
export const REFRESH_WINDOW = Object.freeze({ from: 0.8, to: 0.9 });

/** This client's share of the lifetime at which to refresh, in [0.8, 0.9). */
export function refreshShare(random: () => number): number {
  return REFRESH_WINDOW.from + random() * (REFRESH_WINDOW.to - REFRESH_WINDOW.from);
}

/** When (local clock, ms) the session using `t` should reconnect with a fresh token. */
export function refreshDueAt(t: HeldToken, share: number): number {
  return t.mintedAt + (t.exp - t.iat) * 1000 * share;
}

/** A held token older than this share of its lifetime (at most 60 s) is re-minted before use. */
const FRESH_SHARE = 0.1;
const FRESH_CAP_MS = 60_000;

/**
 * Always holds a ready, unspent connect token.
 *
 * mqtt.js builds CONNECT synchronously from `client.options` on every (re)connect, while signing
 * is asynchronous (architecture.md §Library facts). So the session awaits {@link ready} before it asks
 * mqtt.js to reconnect, and the synchronous `'reconnect'` listener calls {@link take}, which hands
 * over that token and starts minting the next one at once. Each CONNECT gets its own token, so a
 * broker with `requireJti` on never sees one twice.
 */
export class TokenSource {
  readonly #o: TokenSourceOptions;
  #offsetMs: number;
  #held: HeldToken | null = null;
  #minting: Promise<HeldToken> | null = null;
  /** bumped when the clock offset changes: a mint started before that is discarded */
  #generation = 0;

  constructor(o: TokenSourceOptions) {
    this.#o = o;
    this.#offsetMs = o.clockOffsetMs ?? 0;
  }

  /** The offset added to the local clock when minting, ms. */
  get clockOffsetMs(): number {
    return this.#offsetMs;
  }

  /** Applies a new clock offset (from `GET /v1/time`); tokens minted with the old one are dropped. */
  setClockOffset(ms: number): void {
    if (!Number.isFinite(ms)) throw new TypeError('clock offset must be a finite number of ms');
    if (ms === this.#offsetMs) return;
    this.#offsetMs = ms;
    this.#held = null;
    this.#minting = null;
    this.#generation++;
  }

  /** Resolves once a fresh unspent token is held (mints one when needed). Rejects if minting fails. */
  async ready(): Promise<HeldToken> {
    for (;;) {
      if (this.#held !== null && this.#isFresh(this.#held)) return this.#held;
      this.#held = null;
      const generation = this.#generation;
      const held = await this.#mint();
      if (generation === this.#generation && this.#isFresh(held)) {
        this.#held = held;
        return held;
      }
    }
  }

  /**
   * Synchronously hands over the held token (null if none is ready) and starts pre-minting the
   * next, so the following reconnect finds one waiting.
   */
  take(): HeldToken | null {
    const held = this.#held;
    this.#held = null;
    this.#prefetch();
    return held;
  }

  #prefetch(): void {
    const generation = this.#generation;
    this.#mint().then(
      (t) => {
        if (generation === this.#generation && this.#held === null) this.#held = t;
      },
      () => {
        /* the next ready() mints again and reports the failure */
      },
    );
  }

  #mint(): Promise<HeldToken> {
    if (this.#minting !== null) return this.#minting;
    const mintedAt = this.#o.clock();
    const p = this.#o.mint(this.#offsetMs).then(
      (m): HeldToken => ({ token: m.token, iat: m.iat, exp: m.exp, mintedAt }),
    );
    this.#minting = p;
    const clear = () => {
      if (this.#minting === p) this.#minting = null;
    };
    p.then(clear, clear);
    return p;
  }

  #isFresh(t: HeldToken): boolean {
    const freshMs = Math.min(this.#o.ttlSeconds * 1000 * FRESH_SHARE, FRESH_CAP_MS);
    return this.#o.clock() - t.mintedAt <= freshMs;
  }
}
