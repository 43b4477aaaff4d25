import { ProtocolError, type ProtocolErrorCode } from '../errors.ts';
import { MAX_KID_LENGTH } from '../limits.ts';
import { parseStrictJson } from './strict-json.ts';
import type { SignatureAlgorithm } from '../public-key.ts';

/**
 * The compact JWS serialization (RFC 7515 §7.1) read strictly, for both kinds of JWS the protocol
 * defines: connect tokens (protocol.md §The connect token) and signed messages (§Signed messages).
 * Each caller names the code a malformed input is refused with.
 */

/** A compact JWS split into its parts, every segment checked against the base64url alphabet. */
export interface DecodedCompact {
  header: Record<string, unknown>;
  /** the raw payload bytes; parsed only after the signature verified */
  payload: Buffer;
  signature: Buffer;
  /** ASCII(BASE64URL(header) || '.' || BASE64URL(payload)) — RFC 7515 §5.2 */
  signingInput: Buffer;
}

// RFC 7515 §2: base64url without padding; nothing outside [A-Za-z0-9_-].
const B64URL = /^[A-Za-z0-9_-]*$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** How many low bits of the last character carry no data, by `length % 4` (RFC 4648 §3.5). */
const UNUSED_BITS = [0, -1, 4, 2] as const;

/**
 * The header is an allowlist: nothing else may appear. Among what it refuses: parameters that would
 * let a JWS choose its own key (`jwk`, `jku`, `x5u`, `x5c`, `x5t`, RFC 7515 §4.1), demand processing
 * a verifier may skip (`crit`, `b64` from RFC 7797, `zip`), or make it a JWE (`enc`).
 */
const ALLOWED_HEADERS: ReadonlySet<string> = new Set(['alg', 'typ', 'kid']);

/**
 * Strict base64url decode: rejects padding, spaces, stray characters, an impossible length
 * (≡ 1 mod 4) and non-canonical trailing bits (RFC 4648 §3.5), all of which Node's decoder
 * would silently accept.
 */
export function decodeBase64url(segment: string, what: string, code: ProtocolErrorCode): Buffer {
  const unused = UNUSED_BITS[segment.length % 4]!;
  if (unused < 0 || !B64URL.test(segment)) {
    throw new ProtocolError(code, `${what} is not unpadded base64url`);
  }
  if (unused > 0 && (ALPHABET.indexOf(segment[segment.length - 1]!) & ((1 << unused) - 1)) !== 0) {
    throw new ProtocolError(code, `${what} is not canonical base64url`);
  }
  return Buffer.from(segment, 'base64url');
}

/**
 * Parses a header or a payload: UTF-8 JSON exactly, and an object (RFC 7515 §5.2 step 3, RFC 7519
 * §7.2 step 10). A byte-order mark or a member name given twice is refused with `code`, so no two
 * verifiers can read one JWS two ways.
 */
export function parseJsonObject(bytes: Buffer, what: string, code: ProtocolErrorCode): Record<string, unknown> {
  const parsed = parseStrictJson(bytes);
  if ('problem' in parsed) throw new ProtocolError(code, `${what}: ${parsed.problem}`);
  const value = parsed.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError(code, `${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Three strict base64url segments and the header JSON; the payload stays raw bytes. */
export function decodeCompact(text: string, code: ProtocolErrorCode): DecodedCompact {
  const parts = text.split('.');
  if (parts.length !== 3) throw new ProtocolError(code, 'not three dot-separated segments');
  const [h, p, s] = parts as [string, string, string];
  if (h.length === 0) throw new ProtocolError(code, 'empty header segment');
  const headerBytes = decodeBase64url(h, 'header', code);
  const payload = decodeBase64url(p, 'payload', code);
  const signature = decodeBase64url(s, 'signature', code);
  const header = parseJsonObject(headerBytes, 'header', code);
  return { header, payload, signature, signingInput: Buffer.from(`${h}.${p}`, 'latin1') };
}

/**
 * A `kid` a verifier accepts: a non-empty string of at most {@link MAX_KID_LENGTH} characters.
 * Minting checks the same predicate, so no minter produces a kid a verifier refuses.
 *
 * @example
 * ```ts
 * isKid('k-1') // true; isKid('x'.repeat(129)) // false
 * ```
 */
export function isKid(kid: unknown): kid is string {
  return typeof kid === 'string' && kid.length > 0 && kid.length <= MAX_KID_LENGTH;
}

/** Equal ignoring ASCII case only: Unicode case mapping would let `ſ` or the Kelvin sign stand for `s` or `k`. */
function sameMediaType(a: string, b: string): boolean {
  return /^[\x21-\x7e]+$/.test(a) && a.toLowerCase() === b.toLowerCase();
}

/**
 * The header rules both kinds of JWS share: `alg` exactly one of `algorithms` (`ES256` unless the
 * caller says otherwise: protocol.md §Cloud IoT Core tokens adds `RS256` for connect tokens); the allowlist (`alg`, `typ`,
 * `kid`), anything else `header_forbidden`; `typ` compared case-insensitively with `typ.expected`
 * (media types are, RFC 7515 §4.1.9), required or optional; `kid` optional, see {@link isKid}.
 */
export function checkJoseHeader(
  header: Record<string, unknown>,
  typ: { expected: string; required: boolean },
  algorithms: readonly SignatureAlgorithm[] = ['ES256'],
): { alg: SignatureAlgorithm; typ?: string; kid?: string } {
  // RFC 8725 §3.1: the algorithm is fixed by the verifier, never chosen by the JWS.
  const alg = header.alg;
  if (typeof alg !== 'string' || !(algorithms as readonly string[]).includes(alg)) {
    throw new ProtocolError('alg_not_allowed', `alg must be ${algorithms.join(' or ')}`);
  }
  for (const name of Object.keys(header)) {
    if (!ALLOWED_HEADERS.has(name)) throw new ProtocolError('header_forbidden', `header parameter ${JSON.stringify(name.slice(0, 32))} is not allowed`);
  }
  const out: { alg: SignatureAlgorithm; typ?: string; kid?: string } = { alg: alg as SignatureAlgorithm };
  if (header.typ !== undefined || typ.required) {
    if (typeof header.typ !== 'string' || !sameMediaType(header.typ, typ.expected)) {
      throw new ProtocolError('header_invalid', `typ must be ${typ.expected}`);
    }
    out.typ = header.typ;
  }
  if (header.kid !== undefined) {
    if (!isKid(header.kid)) {
      throw new ProtocolError('header_invalid', `kid must be a non-empty string of at most ${MAX_KID_LENGTH} characters`);
    }
    out.kid = header.kid;
  }
  return out;
}
