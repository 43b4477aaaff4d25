import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { checkClaims, type TokenClaims } from './claims.ts';
import { ProtocolError } from './errors.ts';
import type { TokenRules } from './limits.ts';
import type { SignatureAlgorithm } from './public-key.ts';
import { LATCHKEY_DIALECT, type TokenDialect } from './token-dialect.ts';
import { checkHeader, decodeSegments, parseJsonObject, type DecodedToken, type TokenHeader } from './token-header.ts';

/** A registered credential, ready to verify with (a long-lived KeyObject, never re-imported per connect). */
export interface VerifiableCredential {
  kid: string;
  /** a P-256 key verifies ES256 only, an RSA key RS256 only (see {@link algorithmOfKey}) */
  key: KeyObject;
  /** epoch ms; null for no expiry */
  expiresAt: number | null;
}

export interface VerifyTokenOptions extends TokenRules {
  /** epoch ms */
  now: number;
  /** The principal the client id names (device id or `svc:{name}`); the token's `sub` must equal it. */
  principal: string;
  /** The principal's credentials, or null when the principal is unknown. Synchronous by design. */
  resolveCredentials: (principal: string) => readonly VerifiableCredential[] | null;
  /** Records a `jti` as used; returns false when it was seen before within its lifetime. */
  checkJti?: (principal: string, jti: string, expMs: number) => boolean;
  /** The client's token dialect; default {@link LATCHKEY_DIALECT} (protocol.md). */
  dialect?: TokenDialect;
}

export interface VerifiedToken extends TokenClaims {
  /** the credential that verified the signature */
  kid: string;
  /** the algorithm it verified */
  alg: SignatureAlgorithm;
  /** exp in epoch ms */
  expiresAtMs: number;
}

/**
 * The one algorithm a key verifies (protocol.md §Cloud IoT Core tokens: `alg` is bound to the key type):
 * ES256 for a P-256 key, RS256 for an RSA key, null for anything else.
 */
export function algorithmOfKey(key: KeyObject): SignatureAlgorithm | null {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return null;
}

/**
 * How `crypto.verify` checks each algorithm (RFC 7518 §3.3, §3.4): the digest and the options beside
 * the key. ES256 signatures are the 64-byte r‖s (`ieee-p1363`); RS256 is RSASSA-PKCS1-v1_5 with
 * SHA-256. The broker's verify threads (issue 12) receive this table, so they apply the same rules.
 */
export const SIGNATURE_VERIFY_PARAMS: Readonly<Record<SignatureAlgorithm, { readonly digest: 'sha256'; readonly options: Readonly<{ dsaEncoding?: 'ieee-p1363'; padding?: number }> }>> = Object.freeze({
  ES256: Object.freeze({ digest: 'sha256', options: Object.freeze({ dsaEncoding: 'ieee-p1363' as const }) }),
  RS256: Object.freeze({ digest: 'sha256', options: Object.freeze({ padding: constants.RSA_PKCS1_PADDING }) }),
});

/**
 * The checks before `crypto.verify` runs, none of which uses the key's math: the key is of the one
 * type `alg` verifies with (protocol.md §Cloud IoT Core tokens), and the signature has the exact
 * length: 64 bytes for ES256 (RFC 7518 §3.4: DER or any other length fails), the modulus length
 * for RS256 (RFC 8017 §8.2.2 step 1: "If the length of S is not k octets, output 'invalid
 * signature'"). False means the signature does not verify.
 */
export function signatureFits(alg: SignatureAlgorithm, key: KeyObject, signature: Uint8Array): boolean {
  if (algorithmOfKey(key) !== alg) return false;
  if (alg === 'ES256') return signature.byteLength === 64;
  const bits = key.asymmetricKeyDetails?.modulusLength;
  return bits !== undefined && signature.byteLength === Math.ceil(bits / 8);
}

/** `crypto.verify` under `alg` once {@link signatureFits} held; a key or signature crypto rejects verifies nothing. */
function cryptoCheck(alg: SignatureAlgorithm, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const params = SIGNATURE_VERIFY_PARAMS[alg];
  try {
    return cryptoVerify(params.digest, data, { key, ...params.options }, signature);
  } catch {
    return false;
  }
}

/** RFC 7518 §3.4: ES256 signatures are the 64-byte r‖s; anything else (DER, wrong length) fails. */
export function verifySignatureP1363(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  return signature.byteLength === 64 && cryptoCheck('ES256', key, data, signature);
}

/**
 * RFC 7518 §3.3: RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.2). The signature is exactly
 * as long as the modulus; a shorter or longer one fails before the key is used.
 */
export function verifySignatureRs256(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  return signatureFits('RS256', key, signature) && cryptoCheck('RS256', key, data, signature);
}

/** Verifies `signature` under `alg` with a key of that algorithm's type only: an RS256 token never verifies with an EC key, nor ES256 with RSA. */
export function verifySignature(alg: SignatureAlgorithm, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  return signatureFits(alg, key, signature) && cryptoCheck(alg, key, data, signature);
}

/**
 * Credentials to try (protocol.md §The connect token): the one `kid` names, else every unexpired one;
 * of those, only the ones whose key type verifies `alg` (protocol.md §Cloud IoT Core tokens). None of that type
 * at all is `alg_key_mismatch`; some, but expired, is `credential_expired`.
 */
function selectCredentials(creds: readonly VerifiableCredential[] | null, header: TokenHeader, now: number): readonly VerifiableCredential[] {
  if (creds === null) throw new ProtocolError('unknown_principal', 'unknown device or service account');
  const live = (c: VerifiableCredential) => c.expiresAt === null || c.expiresAt > now;
  const ofType = (c: VerifiableCredential) => algorithmOfKey(c.key) === header.alg;
  if (header.kid !== undefined) {
    const named = creds.find((c) => c.kid === header.kid);
    if (named === undefined) throw new ProtocolError('unknown_credential', 'kid names no credential of this principal');
    if (!ofType(named)) throw new ProtocolError('alg_key_mismatch', `the credential kid names does not verify ${header.alg}`);
    if (!live(named)) throw new ProtocolError('credential_expired', 'the credential kid names has expired');
    return [named];
  }
  if (creds.length === 0) throw new ProtocolError('unknown_credential', 'principal has no credentials');
  const typed = creds.filter(ofType);
  if (typed.length === 0) throw new ProtocolError('alg_key_mismatch', `no credential of this principal verifies ${header.alg}`);
  const usable = typed.filter(live);
  if (usable.length === 0) throw new ProtocolError('credential_expired', 'every credential of this principal has expired');
  return usable;
}

/** Verifies the signature against the candidates in order; returns the kid that verified. */
export function findSigner(prepared: PreparedToken): string {
  const { decoded, header, candidates } = prepared;
  for (const c of candidates) {
    if (verifySignature(header.alg, c.key, decoded.signingInput, decoded.signature)) return c.kid;
  }
  throw signatureInvalid();
}

/** The refusal of a signature no candidate verifies. */
export const signatureInvalid = (): ProtocolError => new ProtocolError('signature_invalid', 'signature does not verify');

/** A token up to its signature check: decoded, its header checked, the credentials to try selected. */
export interface PreparedToken {
  readonly decoded: DecodedToken;
  readonly header: TokenHeader;
  readonly candidates: readonly VerifiableCredential[];
}

/**
 * The steps of {@link verifyToken} before the signature: size cap → strict base64url → header →
 * credential lookup. Throws their {@link ProtocolError}. The broker's verify threads (issue 12)
 * run the signature check between this and {@link completeTokenVerification}.
 */
export function prepareTokenVerification(token: string | Uint8Array, opts: VerifyTokenOptions): PreparedToken {
  const decoded = decodeSegments(token);
  const header = checkHeader(decoded.header, (opts.dialect ?? LATCHKEY_DIALECT).algorithms);
  return { decoded, header, candidates: selectCredentials(opts.resolveCredentials(opts.principal), header, opts.now) };
}

/** The steps of {@link verifyToken} after the signature verified with `kid`: claims → subject binding → single-use `jti`. */
export function completeTokenVerification(prepared: PreparedToken, kid: string, opts: VerifyTokenOptions): VerifiedToken {
  const dialect = opts.dialect ?? LATCHKEY_DIALECT;
  const claims = checkClaims(parseJsonObject(prepared.decoded.payload, 'payload'), opts, opts.now, dialect);
  // protocol.md §MQTT CONNECT: client id MUST equal the token's sub; protocol.md §Cloud IoT Core tokens: sub, if present, is the device id.
  if (claims.sub === undefined ? dialect.subject === 'required' : claims.sub !== opts.principal) {
    throw new ProtocolError('subject_mismatch', 'sub does not match the client id');
  }
  const expiresAtMs = claims.exp * 1000;
  if (claims.jti !== undefined && opts.checkJti !== undefined && !opts.checkJti(opts.principal, claims.jti, expiresAtMs)) {
    throw new ProtocolError('jti_replayed', 'jti was already used');
  }
  return { ...claims, kid, alg: prepared.header.alg, expiresAtMs };
}

/**
 * Verifies a connect token for the principal a client id names, in the order of protocol.md:
 * size cap → strict base64url → header (`alg` among the dialect's) → credential lookup (by `kid`, or
 * every unexpired key, of the type `alg` needs) → signature (ES256 in P1363 form, or RS256) → claims
 * → subject binding → single-use `jti`. Cloud IoT Core firmware runs the same steps with
 * `dialect: GCP_DIALECT` (protocol.md §Cloud IoT Core tokens). Synchronous; throws a {@link ProtocolError}
 * whose code is the internal reason. Blocking is not checked here: a valid token for a blocked
 * device is the broker's CONNACK 5.
 *
 * @example
 * ```ts
 * const v = verifyToken(password, { ...DEFAULT_TOKEN_RULES, now: Date.now(), principal: 'thermo-1',
 *   resolveCredentials: (p) => cache.get(p) ?? null });
 * ```
 */
export function verifyToken(token: string | Uint8Array, opts: VerifyTokenOptions): VerifiedToken {
  const prepared = prepareTokenVerification(token, opts);
  return completeTokenVerification(prepared, findSigner(prepared), opts);
}
