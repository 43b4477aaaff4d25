/**
 * Counts the fleet's telemetry as it arrives at the simulator's service account, so loss is
 * measured, not assumed: every telemetry message carries a per-device sequence number `seq`, and
 * received = unique (device, seq) pairs (QoS 1 may deliver a message twice).
 */

/** `devices/{id}/telemetry` and `devices/{id}/telemetry/<any>` (protocol.md §Topics). */
const TELEMETRY_TOPIC = /^devices\/([^/]+)\/telemetry(?:\/.*)?$/;

/**
 * Counts unique (device, seq) pairs for a known set of devices; everything else is ignored.
 *
 * @example
 * ```ts
 * const counter = new TelemetryCounter(['t-1', 'l-1']);
 * await service.subscribe('devices/+/telemetry/#', (topic, payload) => counter.handle(topic, payload));
 * counter.received; // unique messages so far
 * ```
 */
export class TelemetryCounter {
  readonly #seen = new Map<string, Set<number>>();
  #received = 0;
  #duplicates = 0;
  #ignored = 0;

  constructor(deviceIds: Iterable<string>) {
    for (const id of deviceIds) this.#seen.set(id, new Set());
  }

  /** Unique (device, seq) pairs received. */
  get received(): number {
    return this.#received;
  }

  /** Redeliveries of a pair already counted. */
  get duplicates(): number {
    return this.#duplicates;
  }

  /** Messages of other devices, or without a usable `seq`. */
  get ignored(): number {
    return this.#ignored;
  }

  /** Unique messages received from one device. */
  receivedFrom(deviceId: string): number {
    return this.#seen.get(deviceId)?.size ?? 0;
  }

  /** Handles one delivered message (never throws: the payload is untrusted). */
  handle(topic: string, payload: Buffer | string): void {
    const id = TELEMETRY_TOPIC.exec(topic)?.[1];
    const seen = id === undefined ? undefined : this.#seen.get(id);
    const seq = seen === undefined ? undefined : sequenceOf(payload);
    if (seen === undefined || seq === undefined) {
      this.#ignored++;
      return;
    }
    if (seen.has(seq)) {
      this.#duplicates++;
      return;
    }
    seen.add(seq);
    this.#received++;
  }
}

function sequenceOf(payload: Buffer | string): number | undefined {
  try {
    const msg = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) as unknown;
    const seq = typeof msg === 'object' && msg !== null ? (msg as { seq?: unknown }).seq : undefined;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
  } catch {
    return undefined;
  }
}
