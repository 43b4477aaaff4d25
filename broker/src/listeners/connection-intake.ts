import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { guardPacketSize } from './packet-size-guard.ts';

/** The peer address of a WebSocket connection, kept on its stream (net and tls sockets know their own). */
const REMOTE_ADDRESS = Symbol('latchkey.remoteAddress');
type Tagged = Duplex & { [REMOTE_ADDRESS]?: string | null };

/**
 * The peer address of a connection's stream. For a socket it is read when asked (a getpeername
 * call), so an accepted connect never pays for it.
 */
export function remoteAddressOf(stream: Duplex): string | null {
  const s = stream as Tagged;
  return REMOTE_ADDRESS in s ? (s[REMOTE_ADDRESS] ?? null) : ((s as Partial<Socket>).remoteAddress ?? null);
}

/**
 * What every new connection goes through before aedes sees it: its peer address is kept when the
 * listener knows it better than the stream (WebSocket), and its packets are framed and bounded by
 * `maxPacketSize` before aedes can buffer one (protocol.md §Limits; aedes has no maximum).
 *
 * @example
 * ```ts
 * const onConnection = connectionIntake({ maxPacketSize, handle: (s) => aedes.handle(s), onOversized: (s) => s.destroy() });
 * ```
 */
export function connectionIntake(o: {
  maxPacketSize: number;
  handle: (stream: Duplex) => void;
  /** a packet over the limit: the stream should be destroyed */
  onOversized: (stream: Duplex) => void;
}): (stream: Duplex, remoteAddress?: string | null, prefix?: Buffer) => void {
  return (stream, remoteAddress, prefix) => {
    if (remoteAddress !== undefined) (stream as Tagged)[REMOTE_ADDRESS] = remoteAddress;
    const feed = guardPacketSize(stream, o.maxPacketSize, o.onOversized);
    // bytes read ahead (after a PROXY header) go back into the stream, but `unshift` passes by the guard's `push`
    if (prefix !== undefined && prefix.length > 0) {
      if (!feed(prefix)) return;
      stream.unshift(prefix);
    }
    o.handle(stream);
  };
}
