import { isDeviceId } from '@latchkey/device-sdk/protocol';
import type { AuthFailureRecord } from '../registry-port.ts';

/** Limits of what refused connects may write (docs/operations.md §Retention). */
export interface RefusalLogLimits {
  /** a window starts at the first refusal recorded for its key (default: one minute) */
  readonly windowMs: number;
  /** records per source address, and per principal, per window */
  readonly perKey: number;
  /** records per window over all keys */
  readonly perWindow: number;
  /** addresses, principals and (address, principal, reason) triples tracked at once */
  readonly capacity: number;
}

export const DEFAULT_REFUSAL_LOG_LIMITS: RefusalLogLimits = Object.freeze({ windowMs: 60_000, perKey: 10, perWindow: 100, capacity: 100_000 });

/** Refusals counted for one key in its window. */
interface KeyWindow {
  start: number;
  recorded: number;
  counted: number;
  reasons: Record<string, number>;
  last: AuthFailureRecord | null;
  /** the one principal / address every counted refusal had (null: several, or none) */
  principal: string | null | undefined;
  address: string | null | undefined;
}

/** What a flush writes: records for the audit log (new ones and summaries) and each device's latest refusal. */
export interface RefusalBatch {
  records: AuthFailureRecord[];
  lastErrors: Array<readonly [deviceId: string, code: string, at: number]>;
}

/**
 * Refused connects, kept bounded (issue 16, finding 5): nothing is written on the connect path;
 * `drain()` hands over what the broker writes in one batch on its timer.
 *
 * A refusal becomes an audit record (and a log line) unless, within the current window, the same
 * (address, principal, reason) was already recorded, or its address or its principal already has
 * `perKey` records, or `perWindow` records were made overall. Otherwise it is counted, and when
 * its window ends one summary record says "N more in the last minute" with the reasons, for the
 * address (or principal) that had records. So a flood from one address, or against one principal,
 * writes at most `perKey` + 1 records a minute, and any flood at most 3 × `perWindow` + 1.
 * Every refusal still sets its device's `lastError` (latest wins, one write per device per flush).
 *
 * @example
 * ```ts
 * const refusals = new RefusalLog();
 * if (refusals.add(failure, true)) log.info(failure, 'connect refused');
 * const { records, lastErrors } = refusals.drain(Date.now()); // on a timer
 * ```
 */
export class RefusalLog {
  readonly limits: RefusalLogLimits;
  readonly #triples = new Map<string, number>();
  readonly #keys = new Map<string, KeyWindow>();
  #global: KeyWindow = fresh(0);
  #records: AuthFailureRecord[] = [];
  #lastErrors = new Map<string, readonly [string, string, number]>();

  constructor(limits: Partial<RefusalLogLimits> = {}) {
    this.limits = Object.freeze({ ...DEFAULT_REFUSAL_LOG_LIMITS, ...limits });
  }

  /**
   * Takes one refusal. Returns true when it becomes a record of its own (the caller logs it),
   * false when it is only counted. `notice: false` forces counting (a repeated throttled attempt).
   */
  add(f: AuthFailureRecord, notice: boolean): boolean {
    // only devices have a status row (a service's or malformed principal's would match none)
    if (isDeviceId(f.principal)) this.#lastErrors.set(f.principal, [f.principal, f.reason, f.at]);
    const now = f.at;
    if (now - this.#global.start >= this.limits.windowMs) this.#global = this.#rollOver(this.#global, 'all', now);
    const address = f.remoteAddress === null ? null : this.#window(`a:${f.remoteAddress}`, now);
    const principal = f.principal === null ? null : this.#window(`p:${f.principal}`, now);
    const triple = `${f.remoteAddress ?? ''}|${f.principal ?? ''}|${f.reason}`;
    const seen = this.#triples.get(triple);
    const fresh3 = seen === undefined || now - seen >= this.limits.windowMs;
    const record =
      notice &&
      fresh3 &&
      address !== undefined &&
      principal !== undefined &&
      (address?.recorded ?? 0) < this.limits.perKey &&
      (principal?.recorded ?? 0) < this.limits.perKey &&
      this.#global.recorded < this.limits.perWindow &&
      (this.#triples.size < this.limits.capacity || seen !== undefined);
    if (record) {
      this.#triples.set(triple, now);
      if (address) address.recorded++;
      if (principal) principal.recorded++;
      this.#global.recorded++;
      this.#records.push(f);
      return true;
    }
    // counted against a key that has records of its own this window, so summaries stay as few as records
    const into = address && address.recorded > 0 ? address : principal && principal.recorded > 0 ? principal : this.#global;
    into.counted++;
    into.reasons[f.reason] = (into.reasons[f.reason] ?? 0) + 1;
    into.last = f;
    into.principal = into.principal === undefined || into.principal === f.principal ? f.principal : null;
    into.address = into.address === undefined || into.address === f.remoteAddress ? f.remoteAddress : null;
    return false;
  }

  /** What to write now: records made since the last drain, and summaries of windows that have ended by `now`. */
  drain(now: number): RefusalBatch {
    for (const [key, w] of this.#keys) {
      if (now - w.start < this.limits.windowMs) continue;
      this.#keys.delete(key);
      this.#rollOver(w, key, now);
    }
    if (now - this.#global.start >= this.limits.windowMs) this.#global = this.#rollOver(this.#global, 'all', now);
    for (const [triple, at] of this.#triples) if (now - at >= this.limits.windowMs) this.#triples.delete(triple);
    const batch: RefusalBatch = { records: this.#records, lastErrors: [...this.#lastErrors.values()] };
    this.#records = [];
    this.#lastErrors = new Map();
    return batch;
  }

  /** The key's current window (a new one if the last has ended), or undefined when no room is left to track it. */
  #window(key: string, now: number): KeyWindow | undefined {
    let w = this.#keys.get(key);
    if (w !== undefined && now - w.start >= this.limits.windowMs) {
      w = this.#rollOver(w, key, now);
      this.#keys.set(key, w);
    }
    if (w === undefined) {
      if (this.#keys.size >= this.limits.capacity) return undefined;
      w = fresh(now);
      this.#keys.set(key, w);
    }
    return w;
  }

  /** Ends a window: its summary (if it counted anything) joins the records; returns a fresh window. */
  #rollOver(w: KeyWindow, key: string, now: number): KeyWindow {
    if (w.counted > 0) this.#records.push(summary(w, key));
    return fresh(now);
  }
}

function fresh(now: number): KeyWindow {
  return { start: now, recorded: 0, counted: 0, reasons: {}, last: null, principal: undefined, address: undefined };
}

/**
 * "N more in the last minute": the key's counted refusals as one record, naming the address and
 * the principal when all of them shared it (so a summary shows up under `GET /v1/audit?deviceId=`).
 */
function summary(w: KeyWindow, key: string): AuthFailureRecord {
  const last = w.last as AuthFailureRecord;
  const principal = key.startsWith('p:') ? key.slice(2) : (w.principal ?? null);
  const remoteAddress = key.startsWith('a:') ? key.slice(2) : (w.address ?? null);
  return {
    principal,
    remoteAddress,
    clientId: principal === null ? '' : last.clientId,
    reason: last.reason,
    at: last.at,
    repeated: { count: w.counted, reasons: w.reasons, since: w.start },
  };
}
