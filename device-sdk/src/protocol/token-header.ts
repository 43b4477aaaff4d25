import { ProtocolError } from './errors.ts';
import { parseStrictJson } from './internal/strict-json.ts';
import { MAX_KID_LENGTH, MAX_TOKEN_BYTES } from './limits.ts';
import type { SignatureAlgorithm } from './public-key.ts';

/** The protected header of a connect token, after `checkHeader`. */
export interface TokenHeader {
  alg: SignatureAlgorithm;
  typ?: string;
  kid?: string;
}

/** A compact JWS split into its parts, every segment checked against the base64url alphabet. */
export interface DecodedToken {
  header: Record<string, unknown>;
  /** the raw payload bytes; claims are parsed from them only after the signature verified */
  payload: Buffer;
  signature: Buffer;
  /** ASCII(BASE64URL(header) || '.' || BASE64URL(payload)) — RFC 7515 §5.2 */
  signingInput: Buffer;
}

// RFC 7515 §2: base64url without padding; nothing outside [A-Za-z0-9_-].
const B64URL = /^[A-Za-z0-9_-]*$/;
/**
 * The header is an allowlist: nothing else may appear. Among what it refuses: parameters that would
 * let a token choose its own key (`jwk`, `jku`, `x5u`, `x5c`, `x5t`, RFC 7515 §4.1), demand processing
 * a verifier may skip (`crit`, `b64` from RFC 7797, `zip`), or make it a JWE (`enc`).
 */
const ALLOWED_HEADERS: ReadonlySet<string> = new Set(['alg', 'typ', 'kid']);

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** How many low bits of the last character carry no data, by `length % 4` (RFC 4648 §3.5). */
const UNUSED_BITS = [0, -1, 4, 2] as const;

/**
 * A `kid` the verifier accepts: a non-empty string of at most {@link MAX_KID_LENGTH} characters.
 * Minting checks the same predicate, so no minter produces a kid this verifier refuses.
 *
 * @example
 * ```ts
 * isKid('k-1') // true; isKid('x'.repeat(129)) // false
 * ```
 */
export function isKid(kid: unknown): kid is string {
  return typeof kid === 'string' && kid.length > 0 && kid.length <= MAX_KID_LENGTH;
}

/**
 * Strict base64url decode: rejects padding, spaces, stray characters, an impossible length
 * (≡ 1 mod 4) and non-canonical trailing bits (RFC 4648 §3.5), all of which Node's decoder
 * would silently accept.
 */
function decodeSegment(segment: string, what: string): Buffer {
  const unused = UNUSED_BITS[segment.length % 4]!;
  if (unused < 0 || !B64URL.test(segment)) {
    throw new ProtocolError('token_malformed', `${what} is not unpadded base64url`);
  }
  if (unused > 0 && (ALPHABET.indexOf(segment[segment.length - 1]!) & ((1 << unused) - 1)) !== 0) {
    throw new ProtocolError('token_malformed', `${what} is not canonical base64url`);
  }
  return Buffer.from(segment, 'base64url');
}

/**
 * Parses the header or the payload: UTF-8 JSON exactly, and an object (RFC 7515 §5.2 step 3, RFC 7519
 * §7.2 step 10). A byte-order mark or a member name given twice is `token_malformed`, so no two
 * verifiers can read one token two ways.
 */
export function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  const parsed = parseStrictJson(bytes);
  if ('problem' in parsed) throw new ProtocolError('token_malformed', `${what}: ${parsed.problem}`);
  const value = parsed.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('token_malformed', `${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
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
  const parts = text.split('.');
  if (parts.length !== 3) throw new ProtocolError('token_malformed', 'token is not three dot-separated segments');
  const [h, p, s] = parts as [string, string, string];
  if (h.length === 0) throw new ProtocolError('token_malformed', 'empty header segment');
  const headerBytes = decodeSegment(h, 'header');
  const payload = decodeSegment(p, 'payload');
  const signature = decodeSegment(s, 'signature');
  const header = parseJsonObject(headerBytes, 'header');
  return { header, payload, signature, signingInput: Buffer.from(`${h}.${p}`, 'latin1') };
}

/**
 * protocol.md §The connect token, header rules: `alg` exactly one of `algorithms` (`ES256` for
 * native devices; protocol.md §Cloud IoT Core tokens adds `RS256`); then an allowlist, so any other parameter (`jwk`,
 * `crit`, `zip`, `b64`, `enc`, anything unknown) is `header_forbidden`; `typ`, if present, `JWT`
 * (compared case-insensitively, as media types are — RFC 7515 §4.1.9); `kid` optional, see {@link isKid}.
 */
export function checkHeader(header: Record<string, unknown>, algorithms: readonly SignatureAlgorithm[] = ['ES256']): TokenHeader {
  // RFC 8725 §3.1: the algorithm is fixed by the verifier, never chosen by the token.
  const alg = header.alg;
  if (typeof alg !== 'string' || !(algorithms as readonly string[]).includes(alg)) {
    throw new ProtocolError('alg_not_allowed', `alg must be ${algorithms.join(' or ')}`);
  }
  for (const name of Object.keys(header)) {
    if (!ALLOWED_HEADERS.has(name)) throw new ProtocolError('header_forbidden', `header parameter ${JSON.stringify(name.slice(0, 32))} is not allowed`);
  }
  const out: TokenHeader = { alg: alg as SignatureAlgorithm };
  if (header.typ !== undefined) {
    if (typeof header.typ !== 'string' || header.typ.toUpperCase() !== 'JWT') {
      throw new ProtocolError('header_invalid', 'typ must be JWT');
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
