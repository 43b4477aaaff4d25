import { ProtocolError } from '../errors.ts';

/** One decoded PEM block (RFC 7468). */
export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

function invalid(reason: string): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`);
}

/** protocol.md §Keys: the one message for every private key, which is never echoed. */
export const PRIVATE_KEY_MESSAGE = 'this is a private key; send only the public key';

// PKCS#8 (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`), SEC 1 (`EC PRIVATE KEY`), PKCS#1, DSA,
// OpenSSH (`OPENSSH PRIVATE KEY`), and PuTTY key files.
const PRIVATE_MARKERS = [/-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----/, /PuTTY-User-Key-File-\d/];

/** True when `text` holds a private key in any text format we know of. */
export function looksLikePrivateKey(text: string): boolean {
  return PRIVATE_MARKERS.some((re) => re.test(text));
}

const BLOCK = /^-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n([A-Za-z0-9+/=\s]*?)\r?\n?-----END ([A-Z0-9 ]{1,40})-----$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes exactly one PEM block (RFC 7468 §2, strict textual encoding except that line
 * lengths are not enforced). Leading and trailing whitespace is allowed; any other text
 * before or after the block, a second block, encapsulated headers (`Proc-Type:`), or
 * base64 that does not round-trip fail with `invalid_public_key`.
 */
export function decodeSinglePem(text: string): PemBlock {
  const trimmed = text.trim();
  if (trimmed.split('-----BEGIN ').length - 1 > 1) throw invalid('more than one PEM block');
  const m = BLOCK.exec(trimmed);
  if (!m) throw invalid('malformed PEM');
  const [, label, body, endLabel] = m as unknown as [string, string, string, string];
  if (label !== endLabel) throw invalid('PEM BEGIN and END labels differ');
  const b64 = body.replace(/\s+/g, '');
  if (b64.length === 0 || b64.length % 4 !== 0 || !BASE64.test(b64)) throw invalid('malformed PEM base64');
  const der = Buffer.from(b64, 'base64');
  // Node's decoder ignores stray bits and characters: insist on a canonical round trip.
  if (der.toString('base64') !== b64) throw invalid('non-canonical PEM base64');
  return { label, der };
}

/** Encodes DER as a PEM block with 64-character lines (RFC 7468 §2). */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
