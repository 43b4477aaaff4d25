import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { clientAddress } from './forwarded-for.ts';
import { readProxyHeader } from './proxy-protocol.ts';

/**
 * A new connection (already decrypted / unwrapped). `remoteAddress` is given when the stream
 * cannot tell it (WebSocket, or a PROXY header named the client); otherwise it is undefined and
 * read from the socket only when needed (throttling, refusals), so an accepted connect never pays
 * for getpeername. `prefix`: bytes of the stream already read (after a PROXY header), to be put back.
 */
export type ConnectionHandler = (stream: Duplex, remoteAddress?: string | null, prefix?: Buffer) => void;

/**
 * PROXY protocol on a listener (proxy-protocol.ts): from `trusted` peers a header is read (within
 * `timeoutMs`) and names the client; `onRefused` learns of a connection closed for a bad or
 * missing header.
 */
export interface ProxyOptions {
  trusted: (address: string) => boolean;
  timeoutMs: number;
  onRefused: (peer: string | null, problem: string) => void;
}

/** Runs `next` at once for an untrusted peer; after its PROXY header for a trusted one. */
function throughProxy(socket: Socket, proxy: ProxyOptions | null, next: (source?: string, rest?: Buffer) => void): void {
  const peer = socket.remoteAddress ?? null;
  if (proxy === null || peer === null || !proxy.trusted(peer)) {
    next();
    return;
  }
  readProxyHeader(socket, proxy.timeoutMs, (result, problem) => {
    if (result === null) proxy.onRefused(peer, problem ?? 'bad PROXY header');
    else next(result.source, result.rest);
  });
}

/** A bound listener. `close()` stops accepting and destroys every connection it accepted. */
export interface Listener {
  readonly kind: 'mqtt' | 'mqtts' | 'ws';
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

interface ListenOptions {
  host: string;
  port: number;
  onConnection: ConnectionHandler;
}

interface SocketListenOptions extends ListenOptions {
  /** null: no PROXY protocol (every peer is the client) */
  proxy: ProxyOptions | null;
}

/** Remembers accepted sockets so `close()` can end them (a socket before CONNECT is not yet an aedes client). */
function trackSockets(server: NetServer | HttpServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}

async function bind(server: NetServer | HttpServer, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
  return address.port;
}

function closer(server: NetServer | HttpServer, sockets: Set<Socket>, before?: () => void): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      before?.();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
}

/** Plain MQTT over TCP (protocol.md §MQTT CONNECT: TCP by default). */
export async function listenTcp(opts: SocketListenOptions): Promise<Listener> {
  const server = createNetServer((socket) => throughProxy(socket, opts.proxy, (source, rest) => opts.onConnection(socket, source, rest)));
  const sockets = trackSockets(server);
  const port = await bind(server, opts.host, opts.port);
  return { kind: 'mqtt', host: opts.host, port, close: closer(server, sockets) };
}

/**
 * MQTT over TLS. The handshake must finish within `handshakeTimeoutMs` (the connect timeout),
 * after which aedes's own CONNECT timer starts. A PROXY header comes before the handshake, so a TCP
 * server accepts the connection, reads it (from a trusted peer), and hands the socket to a TLS
 * server that does not listen itself; the client address it named is found again by the
 * connection's peer address and port, unique among open connections.
 */
export async function listenTls(opts: SocketListenOptions & { cert: string; key: string; handshakeTimeoutMs: number }): Promise<Listener> {
  const named = new Map<string, string>();
  const keyOf = (s: Socket | TLSSocket) => `${s.remoteAddress}|${s.remotePort}`;
  const tlsServer = createTlsServer({ cert: opts.cert, key: opts.key, handshakeTimeout: opts.handshakeTimeoutMs }, (socket) =>
    opts.onConnection(socket, named.get(keyOf(socket))),
  );
  tlsServer.on('tlsClientError', (_err, socket) => socket.destroy());
  const server = createNetServer((socket) =>
    throughProxy(socket, opts.proxy, (source, rest) => {
      if (source !== undefined) {
        const key = keyOf(socket);
        named.set(key, source);
        socket.once('close', () => named.delete(key));
      }
      if (rest !== undefined && rest.length > 0) socket.unshift(rest);
      tlsServer.emit('connection', socket);
    }),
  );
  const sockets = trackSockets(server);
  const port = await bind(server, opts.host, opts.port);
  return { kind: 'mqtts', host: opts.host, port, close: closer(server, sockets) };
}

/** Subprotocols an MQTT-over-WebSocket client may ask for (mqtt.js sends `mqtt`; MQTT 3.1 clients `mqttv3.1`). */
const MQTT_SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

/**
 * MQTT over WebSocket on any path. `ws` refuses a frame larger than `maxPayload` itself;
 * the broker's stream guard still bounds a packet split across frames. Behind a trusted proxy
 * (`trusted`), the client's address comes from the upgrade request's X-Forwarded-For.
 */
export async function listenWs(
  opts: ListenOptions & { maxPayload: number; upgradeTimeoutMs: number; trusted: ((address: string) => boolean) | null },
): Promise<Listener> {
  const server = createHttpServer((_req, res) => {
    res.writeHead(426, { connection: 'close', upgrade: 'websocket' }).end();
  });
  server.headersTimeout = opts.upgradeTimeoutMs;
  server.requestTimeout = opts.upgradeTimeoutMs;
  const wss = new WebSocketServer({
    server,
    maxPayload: opts.maxPayload,
    perMessageDeflate: false,
    handleProtocols: (protocols) => MQTT_SUBPROTOCOLS.find((p) => protocols.has(p)) ?? false,
  });
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on('error', () => ws.terminate());
    // read now: the HTTP socket is gone once upgraded and closed
    const address = clientAddress(req.socket.remoteAddress ?? null, req.headers['x-forwarded-for'], opts.trusted);
    opts.onConnection(stream, address);
  });
  wss.on('error', () => undefined); // errors of the underlying server surface through `bind`
  const sockets = trackSockets(server);
  const port = await bind(server, opts.host, opts.port);
  const close = closer(server, sockets, () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  });
  return { kind: 'ws', host: opts.host, port, close };
}
