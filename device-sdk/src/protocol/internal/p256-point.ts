import { ProtocolError } from '../errors.ts';

/**
 * The NIST P-256 (secp256r1) group, SEC 2 §2.4.2 / FIPS 186-4 §D.1.2.3.
 * Cofactor 1: every affine point on the curve lies in the prime-order group, so an
 * on-curve check is the whole public-key validation (SEC 1 §3.2.2.1 steps 1–3).
 */
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const A = P - 3n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
/** Coordinate length in bytes. */
export const P256_COORDINATE_BYTES = 32;

/** An affine P-256 point with big-endian 32-byte coordinates, validated on the curve. */
export interface P256Point {
  readonly x: Buffer;
  readonly y: Buffer;
}

function invalid(reason: string): ProtocolError<'invalid_public_key'> {
  return new ProtocolError('invalid_public_key', `invalid public key: ${reason}`);
}

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + Buffer.from(bytes).toString('hex'));
}

function toBytes(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(P256_COORDINATE_BYTES * 2, '0'), 'hex');
}

/** x³ + a·x + b mod p: the right-hand side of the curve equation. */
function curveRhs(x: bigint): bigint {
  return mod(x * x * x + A * x + B);
}

/**
 * Checks that (x, y) is an affine point of P-256: both coordinates in [0, p) and
 * y² = x³ − 3x + b (mod p). Refuses off-curve points (invalid-curve attacks) with
 * `invalid_public_key`.
 */
export function validatePoint(xBytes: Uint8Array, yBytes: Uint8Array): P256Point {
  if (xBytes.length !== P256_COORDINATE_BYTES || yBytes.length !== P256_COORDINATE_BYTES) {
    throw invalid('a P-256 coordinate must be 32 bytes');
  }
  const x = toBigInt(xBytes);
  const y = toBigInt(yBytes);
  // SEC 1 §3.2.2.1 step 2: coordinates are field elements.
  if (x >= P || y >= P) throw invalid('coordinate out of range');
  // SEC 1 §3.2.2.1 step 3: the point satisfies the curve equation.
  if (mod(y * y) !== curveRhs(x)) throw invalid('point is not on the P-256 curve');
  return { x: Buffer.from(xBytes), y: Buffer.from(yBytes) };
}

/**
 * Decodes a SEC 1 §2.3.4 octet-string point: uncompressed (`04‖x‖y`) or compressed
 * (`02|03‖x`). The point at infinity (`00`) and the hybrid forms (`06`, `07`) are refused.
 */
export function decodePoint(octets: Uint8Array): P256Point {
  const n = P256_COORDINATE_BYTES;
  const tag = octets[0];
  if (tag === 0x04 && octets.length === 1 + 2 * n) {
    return validatePoint(octets.subarray(1, 1 + n), octets.subarray(1 + n));
  }
  if ((tag === 0x02 || tag === 0x03) && octets.length === 1 + n) {
    const x = toBigInt(octets.subarray(1));
    if (x >= P) throw invalid('coordinate out of range');
    const rhs = curveRhs(x);
    // p ≡ 3 (mod 4), so a square root of rhs, when one exists, is rhs^((p+1)/4).
    let y = modPow(rhs, (P + 1n) / 4n);
    if (mod(y * y) !== rhs) throw invalid('compressed point has no square root');
    if ((y & 1n) !== BigInt(tag & 1)) y = mod(-y);
    return validatePoint(octets.subarray(1), toBytes(y));
  }
  if (tag === 0x00) throw invalid('the point at infinity is not a public key');
  throw invalid('unsupported point encoding');
}
