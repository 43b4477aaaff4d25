/**
 * Issue 16, finding 7: refusals raised by Node's HTTP parser or fastify's router before any route
 * runs (431, 414, bad URL encoding, garbage) are problem+json with a stable code too, and none
 * echoes the request's path or body.
 */
import { createServer, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientErrorHandler } from '../../provisioning/src/http/problem-handler.ts';
import { ADMIN_TOKEN, startApi, type HttpFixture } from './http-fixture.ts';
import { rawHttp, type RawAnswer } from './raw-http.ts';

let fx: HttpFixture;
let port: number;
beforeAll(async () => {
  fx = await startApi();
  port = Number(new URL(fx.url).port);
});
afterAll(() => fx.close());

const MARK = 'ECHO-MARKER-7f3a';

function expectProblem(res: RawAnswer, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  expect(body).toMatchObject({ type: `urn:latchkey:problem:${code}`, status, code });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(res.text).not.toContain(MARK);
  expect(res.text).not.toContain(ADMIN_TOKEN);
}

describe('refusals before routing are problem+json and echo nothing', () => {
  it('431 headers_too_large for a huge header', async () => {
    expectProblem(await rawHttp(port, `GET /v1/time HTTP/1.1\r\nHost: x\r\nX-Big: ${MARK}${'a'.repeat(20_000)}\r\n\r\n`), 431, 'headers_too_large');
  });

  it('431 headers_too_large for a URL over 16 KiB', async () => {
    expectProblem(await rawHttp(port, `GET /v1/devices/${MARK}${'a'.repeat(20_000)}?access_token=${ADMIN_TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n`), 431, 'headers_too_large');
  });

  it('414 uri_too_long for an over-long path parameter (fastify echoed the path)', async () => {
    const res = await rawHttp(port, `GET /v1/devices/${MARK}${'a'.repeat(200)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expectProblem(res, 414, 'uri_too_long');
  });

  it('400 malformed_url for bad percent-encoding (fastify echoed the path and query)', async () => {
    const res = await rawHttp(port, `GET /v1/devices/${MARK}%E0%A4%A?access_token=${ADMIN_TOKEN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expectProblem(res, 400, 'malformed_url');
  });

  it('400 malformed_request for something that is not HTTP', async () => {
    expectProblem(await rawHttp(port, `GARBAGE ${MARK}\r\n\r\n`), 400, 'malformed_request');
    expectProblem(await rawHttp(port, `GET /v1/time HTTP/1.1\r\nHost: x\r\nContent-Length: nope-${MARK}\r\n\r\n`), 400, 'malformed_request');
  });

  it('408 request_timeout: the same handler answers Node\'s timeouts', async () => {
    // Node raises ERR_HTTP_REQUEST_TIMEOUT after headersTimeout (60 s); drive the handler with it on a real socket
    const server = createServer((socket: Socket) => {
      clientErrorHandler.call(fx.app, Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const serverPort = (server.address() as { port: number }).port;
    const text = await new Promise<string>((resolve) => {
      const c = connect(serverPort, '127.0.0.1');
      let out = '';
      c.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => resolve(out));
      c.on('error', () => undefined);
    });
    server.close();
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'request_timeout', status: 408 });
  });

  it('404 not_found does not echo the path either, and the service keeps serving', async () => {
    const res = await rawHttp(port, `GET /v1/${MARK}?access_token=${ADMIN_TOKEN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expectProblem(res, 404, 'not_found');
    expect((await fetch(`${fx.url}/healthz`)).status).toBe(200);
  });
});
