/**
 * The connect token a Cloud IoT Core device mints (docs/protocol.md §Cloud IoT Core tokens): what
 * Google's samples signed, `{iat, exp, aud: project}` with no `sub`, RS256 or ES256 — written here with
 * node:crypto alone, like firmware that has never seen latchkey's SDK.
 */
import { sign, type KeyObject } from 'node:crypto';

export type GcpAlgorithm = 'RS256' | 'ES256';

const b64 = (v: object | Buffer) => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url');

/**
 * @example
 * ```ts
 * const password = mintGcpToken({ privateKey, algorithm: 'RS256', project: 'acme-iot', nowS: Math.floor(Date.now() / 1000), ttlS: 1200 });
 * ```
 */
export function mintGcpToken(o: { privateKey: KeyObject; algorithm: GcpAlgorithm; project: string; nowS: number; ttlS: number }): string {
  const input = `${b64({ alg: o.algorithm, typ: 'JWT' })}.${b64({ iat: o.nowS, exp: o.nowS + o.ttlS, aud: o.project })}`;
  const signature = o.algorithm === 'RS256' ? sign('sha256', Buffer.from(input), o.privateKey) : sign('sha256', Buffer.from(input), { key: o.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64(signature)}`;
}
