/**
 * A minimal DER (X.690 §10) writer: just what the canonical RSA SubjectPublicKeyInfo needs
 * (SEQUENCE, INTEGER, NULL, OBJECT IDENTIFIER, BIT STRING), always in definite, minimal form.
 */
import { TAG } from './der-reader.ts';

/** Length octets in the minimal definite form (X.690 §10.1). */
function lengthOf(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthOf(content.length), content]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(TAG.sequence, Buffer.concat(items));
}

/**
 * A non-negative INTEGER from its big-endian magnitude (X.690 §8.3): leading zero octets dropped,
 * one 0x00 added back when the top bit is set, so the value stays positive.
 */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const digits = magnitude.subarray(start);
  const content = digits.length === 0 ? Buffer.from([0]) : (digits[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), digits]) : Buffer.from(digits);
  return tlv(TAG.integer, content);
}

export const DER_NULL: Buffer = Buffer.from([TAG.null, 0]);

/** An OBJECT IDENTIFIER from its content octets in hex. */
export function oid(contentHex: string): Buffer {
  return tlv(TAG.oid, Buffer.from(contentHex, 'hex'));
}

/** A BIT STRING of whole octets (no unused bits, X.690 §8.6.2). */
export function bitString(octets: Uint8Array): Buffer {
  return tlv(TAG.bitString, Buffer.concat([Buffer.from([0]), octets]));
}
