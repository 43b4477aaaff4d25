import { DeviceClientError } from '../errors.ts';
import { signWith, type BoundMessageSigner } from '../token/sign-message.ts';

/**
 * A sequence starts at the clock in microseconds: protocol.md §Signed messages, Sequence numbers.
 * A restarted device starts above every number it signed before, provided its (corrected) clock did
 * not go back and it signed fewer than 10^6 messages per second on average since the last start.
 */
const SEQ_PER_MS = 1000;

/**
 * The signing side of a DeviceClient (protocol.md §Signed messages): assigns each message the next
 * sequence number when it is published, signs it with the device's key, and hands the signed
 * messages over in the order they were published, even when a secure element signs out of order.
 *
 * @example
 * ```ts
 * const signer = new MessageSigner(bound, () => clock() + offsetMs);
 * const jws = await signer.sign('devices/thermo-1/telemetry', Buffer.from('{"celsius":21.5}'));
 * ```
 */
export class MessageSigner {
  readonly #bound: BoundMessageSigner;
  readonly #now: () => number;
  #next: number | null = null;
  /** the previous message's signature, settled: the next one resolves after it */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(bound: BoundMessageSigner, now: () => number) {
    this.#bound = bound;
    this.#now = now;
  }

  /** The sequence number the next message gets (null before the first). */
  get nextSeq(): number | null {
    return this.#next;
  }

  /**
   * Signs `payload` for `topic` with the next sequence number and `iat` = now; resolves with the
   * compact JWS as bytes, after every message signed before it. Rejects with `signing_failed`.
   */
  sign(topic: string, payload: Buffer): Promise<Buffer> {
    const now = this.#now();
    const seq = this.#next ?? Math.floor(now) * SEQ_PER_MS;
    this.#next = seq + 1;
    const signing = signWith(this.#bound, topic, payload, seq, Math.floor(now / 1000)).catch((cause: unknown) => {
      throw new DeviceClientError('signing_failed', 'could not sign the message', { cause });
    });
    const inOrder = Promise.all([signing, this.#tail]).then(([jws]) => Buffer.from(jws, 'latin1'));
    this.#tail = inOrder.catch(() => undefined);
    return inOrder;
  }
}
