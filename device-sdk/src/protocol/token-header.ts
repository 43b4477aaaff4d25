import { ProtocolError } from './errors.ts';
import { checkJoseHeader, decodeCompact, isKid, parseJsonObject as parseObject, type DecodedCompact } from './internal/compact-jws.ts';
import { MAX_TOKEN_BYTES } from './limits.ts';
import type { SignatureAlgorithm } from './public-key.ts';

export { isKid };

/** The protected header of a connect token, after `checkHeader`. */
export interface TokenHeader {
  alg: SignatureAlgorithm;
  typ?: string;
  kid?: string;
}

/** A compact JWS split into its parts, every segment checked against the base64url alphabet. */
export type DecodedToken = DecodedCompact;

/**
 * Parses a connect token's header or payload: UTF-8 JSON exactly, and an object. A byte-order mark
 * or a member name given twice is `token_malformed`, so no two verifiers can read one token two ways.
 */
export function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  return parseObject(bytes, what, 'token_malformed');
}

/**
 * protocol.md §The connect token: "A token longer than 4096 bytes is refused before it is parsed";
 * none at all is `token_missing`. The broker runs this on the CONNECT password before anything
 * decodes it, and {@link decodeSegments} first of all.
 *
 * @example
 * ```ts
 * checkTokenSize(packet.password); // throws token_missing or token_too_large
 * ```
 */
export function checkTokenSize(token: string | Uint8Array | undefined): void {
  const length = token === undefined ? 0 : typeof token === 'string' ? Buffer.byteLength(token) : token.byteLength;
  if (length === 0) throw new ProtocolError('token_missing', 'no token');
  if (length > MAX_TOKEN_BYTES) throw new ProtocolError('token_too_large', `token longer than ${MAX_TOKEN_BYTES} bytes`);
}

/**
 * Steps 1–2 of verification: the size cap, then the three strict base64url segments and the
 * header JSON. The payload stays raw bytes until the signature has verified.
 *
 * @example
 * ```ts
 * const { header, signingInput, signature } = decodeSegments(password);
 * ```
 */
export function decodeSegments(token: string | Uint8Array): DecodedToken {
  checkTokenSize(token);
  const text = typeof token === 'string' ? token : Buffer.from(token).toString('latin1');
  return decodeCompact(text, 'token_malformed');
}

/**
 * protocol.md §The connect token, header rules: `alg` exactly one of `algorithms` (`ES256` for
 * native devices; protocol.md §Cloud IoT Core tokens adds `RS256`); then an allowlist, so any other
 * parameter (`jwk`, `crit`, `zip`, `b64`, `enc`, anything unknown) is `header_forbidden`; `typ`,
 * if present, `JWT` (compared case-insensitively, as media types are — RFC 7515 §4.1.9), so a signed
 * message (`typ` `latchkey-message+jwt`) is never a connect token; `kid` optional, see {@link isKid}.
 */
export function checkHeader(header: Record<string, unknown>, algorithms: readonly SignatureAlgorithm[] = ['ES256']): TokenHeader {
  return checkJoseHeader(header, { expected: 'JWT', required: false }, algorithms);
}
