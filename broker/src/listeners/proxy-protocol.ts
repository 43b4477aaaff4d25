import { isIP, type Socket } from 'node:net';

/**
 * The PROXY protocol (HAProxy's "PROXY protocol" specification, versions 1 and 2) in front of
 * MQTT over TCP and TLS: a load balancer in TCP mode (HAProxy `send-proxy` / `send-proxy-v2`)
 * prepends one header naming the client's address, so throttling, the audit log and the device's
 * `lastError` see the client instead of the balancer (docs/operations.md §Behind a proxy).
 *
 * Written here rather than taken from aedes-protocol-decoder: aedes 1.2 stores but never calls its
 * `decodeProtocol` hook, so the listener decodes either way; that package decodes a header only
 * when the whole of it is in the first chunk read, does not check who sent it, and brings two
 * dependencies for what is one bounded parse below.
 */

/** 12 bytes every version 2 header starts with. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The specification's longest version 1 line, CRLF included. */
const V1_MAX = 107;
/** Addresses plus TLVs; HAProxy sends a few dozen bytes. */
const V2_MAX_BODY = 2048;

export type ProxyHeader =
  /** the bytes do not start a header (an MQTT packet starts with 0x10) */
  | { kind: 'none' }
  /** the start of a header: read more */
  | { kind: 'partial' }
  | { kind: 'invalid'; reason: string }
  /** `source`: the client's address, or null when the header names none (LOCAL, UNKNOWN, UNIX): the peer is the client */
  | { kind: 'header'; version: 1 | 2; length: number; source: string | null };

/** Whether `buf` is (so far) a prefix of `expected`. */
function startsLike(buf: Buffer, expected: Buffer): boolean {
  const n = Math.min(buf.length, expected.length);
  return buf.subarray(0, n).equals(expected.subarray(0, n));
}

const isPort = (s: string | undefined) => s !== undefined && /^\d{1,5}$/.test(s) && Number(s) <= 65_535;

function parseV1(buf: Buffer): ProxyHeader {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end === -1) return buf.length >= V1_MAX ? { kind: 'invalid', reason: 'v1 line longer than 107 bytes' } : { kind: 'partial' };
  if (end + 2 > V1_MAX) return { kind: 'invalid', reason: 'v1 line longer than 107 bytes' };
  const fields = buf.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (fields[1] === 'UNKNOWN') return { kind: 'header', version: 1, length, source: null };
  const family = fields[1] === 'TCP4' ? 4 : fields[1] === 'TCP6' ? 6 : 0;
  const [, , src, dst, sport, dport] = fields;
  if (family === 0 || fields.length !== 6 || isIP(src as string) !== family || isIP(dst as string) !== family || !isPort(sport) || !isPort(dport)) {
    return { kind: 'invalid', reason: 'malformed v1 line' };
  }
  return { kind: 'header', version: 1, length, source: src as string };
}

function parseV2(buf: Buffer): ProxyHeader {
  if (buf.length < 16) return { kind: 'partial' };
  const verCmd = buf[12] as number;
  const family = buf[13] as number;
  const bodyLength = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2 || (verCmd & 0x0f) > 1) return { kind: 'invalid', reason: 'v2 version or command' };
  if (bodyLength > V2_MAX_BODY) return { kind: 'invalid', reason: 'v2 header too long' };
  const length = 16 + bodyLength;
  if (buf.length < length) return { kind: 'partial' };
  const local = (verCmd & 0x0f) === 0;
  const transport = family & 0x0f;
  if (local || family === 0x00 || family >> 4 === 3) return { kind: 'header', version: 2, length, source: null };
  if (transport !== 1) return { kind: 'invalid', reason: 'v2 transport is not a stream' };
  if (family >> 4 === 1 && bodyLength >= 12) {
    return { kind: 'header', version: 2, length, source: [...buf.subarray(16, 20)].join('.') };
  }
  if (family >> 4 === 2 && bodyLength >= 36) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(16 + i).toString(16));
    // the canonical (compressed) text form
    return { kind: 'header', version: 2, length, source: new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1) };
  }
  return { kind: 'invalid', reason: 'v2 address block too short' };
}

/**
 * Reads a PROXY header at the start of `buf`, v1 or v2.
 *
 * @example
 * ```ts
 * parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.9 10.0.0.1 51234 1883\r\n')) // { kind: 'header', version: 1, length: 44, source: '203.0.113.9' }
 * ```
 */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return { kind: 'partial' };
  if (startsLike(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? { kind: 'partial' } : parseV2(buf);
  if (startsLike(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? { kind: 'partial' } : parseV1(buf);
  return { kind: 'none' };
}

/** What the intake learned about a connection before the protocol starts. */
export interface ProxiedConnection {
  /** the client's address from the header; undefined when there was none or it named none (the peer is the client) */
  source: string | undefined;
  /** bytes read after the header: the start of the stream proper, to be put back */
  rest: Buffer;
}

/**
 * The start of a connection from a `--trust-proxy` peer: reads up to one PROXY header, within
 * `timeoutMs` (the connect timeout: a trusted peer that sends nothing is closed, as a client would
 * be). A header is optional (a trusted peer may also be a plain client, e.g. on loopback); from any
 * other peer nothing is read and a header is left to fail as an MQTT protocol error.
 * `onDone` gets null when the socket was closed instead (timeout, malformed header); the socket is
 * then destroyed.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number, onDone: (result: ProxiedConnection | null, problem?: string) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let settled = false;
  const finish = (result: ProxiedConnection | null, problem?: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('close', onClose);
    if (result === null) socket.destroy();
    onDone(result, problem);
  };
  const onClose = () => finish(null, 'closed before a PROXY header');
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const header = parseProxyHeader(buf);
      if (header.kind === 'partial') continue;
      if (header.kind === 'invalid') finish(null, header.reason);
      else if (header.kind === 'none') finish({ source: undefined, rest: buf });
      else finish({ source: header.source ?? undefined, rest: buf.subarray(header.length) });
    }
  };
  const timer = setTimeout(() => finish(null, 'no PROXY header or CONNECT within the connect timeout'), timeoutMs);
  socket.on('readable', onReadable);
  socket.once('close', onClose);
}
