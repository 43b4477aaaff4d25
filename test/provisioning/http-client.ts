/**
 * Plain node:http clients for tests that need what fetch cannot do: a chosen source address
 * (127.0.0.2, 127.0.0.3 … are all loopback on Linux), and a real reverse proxy that appends the
 * peer address to X-Forwarded-For as nginx's `proxy_add_x_forwarded_for` does.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: any;
}

/** One request from `localAddress` (default 127.0.0.1); JSON bodies are serialized. */
export function send(
  url: string,
  o: { method: string; path: string; headers?: Record<string, string>; body?: unknown; localAddress?: string },
): Promise<RawResponse> {
  const target = new URL(o.path, url);
  const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  const headers: Record<string, string> = { ...o.headers };
  if (payload !== undefined) headers['content-type'] ??= 'application/json';
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: o.method, headers, localAddress: o.localAddress ?? '127.0.0.1', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('json') && text.length > 0) body = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A reverse proxy on 127.0.0.1 port 0 in front of `upstream`, appending the client's address to X-Forwarded-For. */
export async function startReverseProxy(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(upstream);
  const server: Server = createServer((req, res) => {
    const prior = req.headers['x-forwarded-for'];
    const forwarded = [prior, req.socket.remoteAddress].filter((v) => typeof v === 'string' && v.length > 0).join(', ');
    const out = httpRequest(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, 'x-forwarded-for': forwarded }, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => res.writeHead(502).end());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
