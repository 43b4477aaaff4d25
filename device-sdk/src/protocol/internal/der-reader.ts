import { ProtocolError } from '../errors.ts';

/**
 * A strict DER (X.690 §10) reader, just enough for SubjectPublicKeyInfo and the path to it
 * inside a certificate. BER leniency is refused: indefinite lengths, non-minimal length
 * encodings, multi-byte tags, lengths past the end and trailing bytes all fail.
 */
export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly offset: number;
  /** Offset of the content. */
  readonly start: number;
  /** Offset just past the content. */
  readonly end: number;
}

export const TAG = Object.freeze({
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  sequence: 0x30,
});

function invalid(reason: string): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`);
}

/** Reads one TLV starting at `offset`, which must end no later than `limit`. */
export function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw invalid('truncated DER');
  const tag = der[offset]!;
  // X.690 §8.1.2.4: tag number 31 means a multi-byte tag; nothing we read uses one.
  if ((tag & 0x1f) === 0x1f) throw invalid('unexpected DER tag');
  const first = der[offset + 1]!;
  let length: number;
  let start: number;
  if (first < 0x80) {
    length = first;
    start = offset + 2;
  } else {
    const count = first & 0x7f;
    // X.690 §10.1: definite form only; at most 4 length octets keeps us below 2^32.
    if (count === 0 || count > 4) throw invalid('bad DER length');
    if (offset + 2 + count > limit) throw invalid('truncated DER');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i]!;
    // X.690 §10.1: the minimum number of length octets.
    if (length < 0x80 || der[offset + 2] === 0) throw invalid('non-minimal DER length');
    start = offset + 2 + count;
  }
  const end = start + length;
  if (end > limit) throw invalid('DER length past the end');
  return { tag, offset, start, end };
}

/** Reads every TLV of a constructed value's content, in order. */
export function readChildren(der: Uint8Array, parent: Tlv): Tlv[] {
  const children: Tlv[] = [];
  let offset = parent.start;
  while (offset < parent.end) {
    const child = readTlv(der, offset, parent.end);
    children.push(child);
    offset = child.end;
  }
  return children;
}

/** Reads the single TLV that makes up all of `der` (no trailing bytes). */
export function readWhole(der: Uint8Array): Tlv {
  const tlv = readTlv(der, 0, der.length);
  if (tlv.end !== der.length) throw invalid('trailing bytes after DER');
  return tlv;
}

/** The content bytes of a TLV. */
export function contentOf(der: Uint8Array, tlv: Tlv): Uint8Array {
  return der.subarray(tlv.start, tlv.end);
}

/** The full encoding (tag, length and content) of a TLV. */
export function encodingOf(der: Uint8Array, tlv: Tlv): Uint8Array {
  return der.subarray(tlv.offset, tlv.end);
}
