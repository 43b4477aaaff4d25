/**
 * protocol.md §Signed messages, Replay: a consumer accepts each (device, seq) once. Per device it
 * keeps the highest sequence number accepted and a bitmap of the `size` numbers below it (the
 * anti-replay window of RFC 4303 §3.4.3): a number above the highest is new; one within the window
 * is new unless its bit is set; one below the window is refused, since it cannot be told apart from a
 * replay. Messages of one device may thus arrive out of order by up to `size` sequence numbers.
 */
const WORD_BITS = 32;

interface DeviceWindow {
  top: number;
  bits: Uint32Array;
}

/**
 * Remembers which sequence numbers each device's messages used. One instance per consumer;
 * `verifyDeviceMessage` consults it only after a message verified, so a forged message cannot
 * move a window. The least recently seen devices are forgotten beyond `maxDevices`.
 *
 * @example
 * ```ts
 * const replay = new ReplayWindow({ size: 1024 });
 * replay.accept('thermo-1', 1_700_000_000_000_000); // true, then false for the same number
 * ```
 */
export class ReplayWindow {
  readonly size: number;
  readonly maxDevices: number;
  readonly #devices = new Map<string, DeviceWindow>();

  constructor(o: { size?: number; maxDevices?: number } = {}) {
    const size = o.size ?? 1024;
    const maxDevices = o.maxDevices ?? 100_000;
    if (!Number.isInteger(size) || size < WORD_BITS || size > 1 << 20 || size % WORD_BITS !== 0) {
      throw new TypeError(`size must be a multiple of ${WORD_BITS} in ${WORD_BITS}..${1 << 20}`);
    }
    if (!Number.isInteger(maxDevices) || maxDevices < 1) throw new TypeError('maxDevices must be a positive integer');
    this.size = size;
    this.maxDevices = maxDevices;
  }

  /** Devices tracked. */
  get devices(): number {
    return this.#devices.size;
  }

  /** Records `seq` for `deviceId`; false when it was seen before or lies below the window (a replay). */
  accept(deviceId: string, seq: number): boolean {
    if (!Number.isSafeInteger(seq) || seq < 0) return false;
    let w = this.#devices.get(deviceId);
    if (w === undefined) {
      w = { top: seq, bits: new Uint32Array(this.size / WORD_BITS) };
      this.#remember(deviceId, w);
    } else {
      this.#devices.delete(deviceId); // most recently seen last
      this.#devices.set(deviceId, w);
      if (seq > w.top) {
        this.#advance(w, seq);
      } else if (w.top - seq >= this.size || this.#bit(w, seq)) {
        return false;
      }
    }
    w.bits[Math.floor((seq % this.size) / WORD_BITS)]! |= 1 << (seq % WORD_BITS);
    return true;
  }

  /** Forgets every device. */
  clear(): void {
    this.#devices.clear();
  }

  #bit(w: DeviceWindow, seq: number): boolean {
    return (w.bits[Math.floor((seq % this.size) / WORD_BITS)]! & (1 << (seq % WORD_BITS))) !== 0;
  }

  /** Moves the top to `seq`, clearing the bits of the numbers the window slides over. */
  #advance(w: DeviceWindow, seq: number): void {
    if (seq - w.top >= this.size) {
      w.bits.fill(0);
    } else {
      for (let s = w.top + 1; s <= seq; s++) w.bits[Math.floor((s % this.size) / WORD_BITS)]! &= ~(1 << (s % WORD_BITS));
    }
    w.top = seq;
  }

  #remember(deviceId: string, w: DeviceWindow): void {
    if (this.#devices.size >= this.maxDevices) {
      const oldest = this.#devices.keys().next();
      if (oldest.done !== true) this.#devices.delete(oldest.value);
    }
    this.#devices.set(deviceId, w);
  }
}
