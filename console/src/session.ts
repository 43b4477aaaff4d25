import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '@latchkey/device-sdk/protocol';

/** A message for the next page the operator sees (after a POST and its redirect). */
export interface Flash {
  kind: 'ok' | 'error';
  text: string;
  /** shown once, e.g. a new enrollment token; never logged, dropped once rendered */
  secret?: string;
}

export interface ConsoleSession {
  /** the per-session CSRF token every form carries */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeenAt: number;
  flash: Flash | null;
}

export interface SessionLimits {
  /** a session unused this long ends, ms */
  readonly idleMs: number;
  /** a session ends this long after sign-in whatever happens, ms */
  readonly absoluteMs: number;
  /** sessions kept at once; signing in beyond it ends the least recently used */
  readonly maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = Object.freeze({
  idleMs: 30 * 60_000,
  absoluteMs: 12 * 3_600_000,
  maxSessions: 1_000,
});

const hashOf = (id: string): string => createHash('sha256').update(id, 'utf8').digest('base64url');
const ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Console sign-in sessions, in memory. The cookie carries a random 256-bit id; the store keeps
 * only its SHA-256, so what is in memory (or a heap dump) cannot be replayed as a cookie. A
 * session ends when idle for `idleMs`, `absoluteMs` after sign-in, at sign-out, or on restart.
 *
 * @example
 * ```ts
 * const sessions = new SessionStore(clock);
 * const { id, session } = sessions.create();   // id goes into the cookie, nowhere else
 * sessions.get(id)?.csrf
 * ```
 */
export class SessionStore {
  readonly limits: SessionLimits;
  readonly #clock: Clock;
  /** by hash of the id; Map order = least recently used first */
  readonly #sessions = new Map<string, ConsoleSession>();

  constructor(clock: Clock, limits: Partial<SessionLimits> = {}) {
    this.#clock = clock;
    this.limits = Object.freeze({ ...DEFAULT_SESSION_LIMITS, ...limits });
  }

  get size(): number {
    return this.#sessions.size;
  }

  create(): { id: string; session: ConsoleSession } {
    const now = this.#clock();
    const id = randomBytes(32).toString('base64url');
    const session: ConsoleSession = { csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeenAt: now, flash: null };
    while (this.#sessions.size >= this.limits.maxSessions) this.#sessions.delete(this.#sessions.keys().next().value!);
    this.#sessions.set(hashOf(id), session);
    return { id, session };
  }

  /** The live session of this cookie value (and marks it used), or null when unknown or expired. */
  get(id: string | undefined): ConsoleSession | null {
    if (id === undefined || !ID.test(id)) return null;
    const key = hashOf(id);
    const session = this.#sessions.get(key);
    if (session === undefined) return null;
    const now = this.#clock();
    if (now - session.lastSeenAt >= this.limits.idleMs || now - session.createdAt >= this.limits.absoluteMs) {
      this.#sessions.delete(key);
      return null;
    }
    session.lastSeenAt = now;
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
    return session;
  }

  /** Seconds until the session's absolute end (the cookie's Max-Age). */
  maxAgeSeconds(session: ConsoleSession): number {
    return Math.max(0, Math.floor((session.createdAt + this.limits.absoluteMs - this.#clock()) / 1000));
  }

  destroy(id: string | undefined): void {
    if (id !== undefined && ID.test(id)) this.#sessions.delete(hashOf(id));
  }
}

/** Constant-time check of a form's CSRF token against the session's. */
export function csrfMatches(session: ConsoleSession, sent: unknown): boolean {
  if (typeof sent !== 'string' || sent.length !== session.csrf.length) return false;
  return timingSafeEqual(Buffer.from(sent), Buffer.from(session.csrf));
}
