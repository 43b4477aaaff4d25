import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { clientAddress } from './forwarded-for.ts';

/**
 * Hands a new connection (already decrypted / unwrapped) to the broker. The peer address is a
 * getter: reading it costs a system call, and most connects never need it.
 */
/**
 * A new connection. `remoteAddress` is given when the stream cannot tell it (WebSocket); for
 * net/tls sockets it is undefined and read from the socket only when needed (throttling,
 * refusals), so an accepted connect never pays for getpeername.
 */
export type ConnectionHandler = (stream: Duplex, remoteAddress?: string | null) => void;

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
export async function listenTcp(opts: ListenOptions): Promise<Listener> {
  const server = createNetServer((socket) => opts.onConnection(socket));
  const sockets = trackSockets(server);
  const port = await bind(server, opts.host, opts.port);
  return { kind: 'mqtt', host: opts.host, port, close: closer(server, sockets) };
}

/**
 * MQTT over TLS. The handshake must finish within `handshakeTimeoutMs` (the connect timeout),
 * after which aedes's own CONNECT timer starts.
 */
export async function listenTls(opts: ListenOptions & { cert: string; key: string; handshakeTimeoutMs: number }): Promise<Listener> {
  const server = createTlsServer({ cert: opts.cert, key: opts.key, handshakeTimeout: opts.handshakeTimeoutMs }, (socket) =>
    opts.onConnection(socket),
  );
  server.on('tlsClientError', (_err, socket) => socket.destroy());
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
