import type { Duplex } from 'node:stream';

/**
 * Follows the MQTT framing of a byte stream — fixed header byte, remaining length
 * (1 to 4 bytes, [MQTT-2.2.3]), then that many bytes — and reports a packet larger than
 * `maxPacketSize` (fixed header included) as soon as its length field is complete, before
 * any of its body is buffered (protocol.md §Limits; aedes has no such limit, issue #831).
 * Skipping a body is arithmetic, so the cost per chunk is constant.
 *
 * @example
 * ```ts
 * const guard = new PacketSizeGuard(262_144);
 * guard.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])) // false: a PUBLISH claiming 256 MiB
 * ```
 */
export class PacketSizeGuard {
  readonly maxPacketSize: number;
  /** body bytes of the current packet still to skip */
  #left = 0;
  /** true while reading the remaining-length bytes */
  #inLength = false;
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;

  constructor(maxPacketSize: number) {
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 2) throw new TypeError('maxPacketSize must be an integer >= 2');
    this.maxPacketSize = maxPacketSize;
  }

  /** Consumes the next chunk of the stream; false when a packet is too large or its length is malformed. */
  feed(chunk: Uint8Array): boolean {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#left > 0) {
        const skip = Math.min(this.#left, n - i);
        this.#left -= skip;
        i += skip;
        continue;
      }
      if (!this.#inLength) {
        // the fixed header's first byte (packet type and flags)
        this.#inLength = true;
        this.#length = 0;
        this.#multiplier = 1;
        this.#lengthBytes = 0;
        i++;
        continue;
      }
      const byte = chunk[i++] as number;
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      this.#lengthBytes++;
      if ((byte & 0x80) !== 0) {
        if (this.#lengthBytes === 4) return false; // [MQTT-2.2.3] at most four length bytes
        if (1 + this.#lengthBytes + this.#length > this.maxPacketSize) return false;
        continue;
      }
      this.#inLength = false;
      if (1 + this.#lengthBytes + this.#length > this.maxPacketSize) return false;
      this.#left = this.#length;
    }
    return true;
  }
}

const GUARD = Symbol('latchkey.packetSizeGuard');

/** Per-connection state: the framing guard plus what the shared `push` needs (one object, no closures). */
class StreamGuard extends PacketSizeGuard {
  violated = false;
  constructor(
    maxPacketSize: number,
    readonly push: Duplex['push'],
    readonly onViolation: (stream: Duplex) => void,
  ) {
    super(maxPacketSize);
  }
}

type Guarded = Duplex & { [GUARD]: StreamGuard };

/** One function shared by every guarded stream: frames the chunk, then hands it to the original push. */
function guardedPush(this: Guarded, chunk: unknown, encoding?: BufferEncoding): boolean {
  const g = this[GUARD];
  if (chunk === null || chunk === undefined) return g.push.call(this, chunk, encoding);
  if (g.violated) return false;
  const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Uint8Array);
  if (g.feed(bytes)) return g.push.call(this, chunk, encoding);
  g.violated = true;
  g.onViolation(this);
  return false;
}

/**
 * Guards the readable side of `stream`: every chunk is framed by a {@link PacketSizeGuard}
 * before it enters the stream's buffer, and the chunk that breaks the limit never enters it —
 * aedes cannot parse or buffer any of it — and `onViolation(stream)` is called once (it should
 * destroy the stream). This replaces the instance's `push`, the one entry point through which a
 * Readable receives data: net and tls sockets (stream_base onStreamRead) and the `ws` stream
 * (createWebSocketStream) all feed their readable side through it. Attach it when the
 * connection is handed over, before data flows; no extra stream sits in the pipeline, and a
 * connection costs one small object (idle connections are what a broker holds most of).
 * Returns what checks bytes that enter the stream another way (`unshift`): false (and
 * `onViolation`) when they break the limit.
 */
export function guardPacketSize(stream: Duplex, maxPacketSize: number, onViolation: (stream: Duplex) => void): (bytes: Uint8Array) => boolean {
  const guard = new StreamGuard(maxPacketSize, stream.push, onViolation);
  (stream as Guarded)[GUARD] = guard;
  stream.push = guardedPush;
  return (bytes) => {
    if (!guard.violated && guard.feed(bytes)) return true;
    guard.violated = true;
    onViolation(stream);
    return false;
  };
}
