/**
 * Issue 16, finding 4: `?access_token=<admin token>` was refused but the whole URL was logged.
 * Whatever a request carries, and wherever (headers, query, path, body, malformed requests,
 * 404s, 414, 431), neither the admin token nor any `lket.` enrollment token reaches the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capturingLogger, ADMIN, ADMIN_TOKEN, deviceKey, startApi, type HttpFixture } from './http-fixture.ts';
import { rawHttp } from './raw-http.ts';

let fx: HttpFixture;
const lines: string[] = [];
beforeAll(async () => {
  fx = await startApi({ log: capturingLogger(lines, 'trace'), config: { authFailureLimit: 3 } });
});
afterAll(() => fx.close());

describe('the log never holds the admin token or an enrollment token', () => {
  it('whatever the request', async () => {
    const port = Number(new URL(fx.url).port);
    const lket = (await fx.api('POST', '/v1/enrollment-tokens', { ttlSeconds: 600 })).body.token as string;
    const fake = 'lket.ZZZZZZZZZZZZ.' + 'f'.repeat(43);
    const secrets = [ADMIN_TOKEN, lket, fake];
    const key = deviceKey().pem;
    for (const s of secrets) {
      const q = encodeURIComponent(s);
      // headers
      for (const [name, value] of [
        ['authorization', `Bearer ${s}`],
        ['authorization', `bearer ${s}`],
        ['authorization', s],
        ['x-api-key', s],
        ['cookie', `session=${s}`],
        ['user-agent', s],
        ['request-id', s],
        ['x-request-id', s],
        ['x-forwarded-for', s],
        ['referer', `http://x/?token=${q}`],
      ] as const) {
        await fx.api('GET', '/v1/devices', undefined, { [name]: value });
        await fx.api('POST', '/v1/enroll', { deviceId: 'log-x', publicKey: key, proof: 'x' }, { [name]: value });
      }
      await rawHttp(port, `GET /v1/time HTTP/1.1\r\nHost: ${s}\r\nConnection: close\r\n\r\n`);
      // query strings, on matched and unmatched routes, with and without a valid admin token
      for (const path of [`/v1/devices?access_token=${q}`, `/v1/time?token=${q}`, `/healthz?x=${q}`, `/v1/nothing?access_token=${q}`, `/v1/audit?deviceId=${q}`]) {
        await fx.api('GET', path, undefined, {});
        await fx.api('GET', path);
      }
      // paths
      for (const path of [`/v1/devices/${q}`, `/v1/${q}`, `/${q}`, `/v1/enrollment-tokens/${q}`, `/v1/devices/${q}/state`]) {
        await fx.api('GET', path);
        await fx.api('DELETE', path);
        await fx.api('GET', path, undefined, { authorization: `Bearer ${s}` });
      }
      // bodies: valid JSON, malformed JSON, too-deep JSON, wrong media type
      await fx.api('POST', '/v1/devices', { id: 'log-1', publicKey: key, metadata: { note: s } });
      await fx.api('POST', '/v1/devices', { id: s, publicKey: s });
      await fx.api('POST', '/v1/devices', `{"id": "${s}",`);
      await fx.api('POST', '/v1/devices', `{"note":"${s}","x":${'['.repeat(100)}${']'.repeat(100)}}`);
      await fx.api('POST', '/v1/devices', s, { ...ADMIN, 'content-type': 'text/plain' });
      await fx.api('POST', '/v1/enroll', { deviceId: s, publicKey: s, proof: s }, { authorization: `Bearer ${s}` });
      await fx.api('PUT', '/v1/devices/log-1/config', { config: { token: s } });
      // malformed requests Node or the router refuse: bad encoding, 414, 431, garbage
      await rawHttp(port, `GET /v1/devices/${q}%E0%A4%A?access_token=${q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await rawHttp(port, `GET /v1/devices/${q}${'a'.repeat(150)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await rawHttp(port, `GET /v1/time?t=${q} HTTP/1.1\r\nHost: x\r\nX-Big: ${s}${'a'.repeat(20_000)}\r\n\r\n`);
      await rawHttp(port, `GET /v1/${q}${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await rawHttp(port, `${s} /v1/time HTTP/1.1\r\n\r\n`);
      await rawHttp(port, `GET /v1/time HTTP/1.1\r\nHost: x\r\nContent-Length: ${s}\r\n\r\n`);
    }
    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(100);
    expect(log).toContain('request refused');
    expect(log).toContain('"route":"/v1/devices"'); // requests are logged: by route, not by URL
    for (const s of secrets) {
      expect(log).not.toContain(s);
      expect(log).not.toContain(encodeURIComponent(s));
    }
    expect(log).not.toMatch(/lket\./);
    expect(log).not.toContain(lket.split('.')[2]!);
    expect(log).not.toContain('access_token');
  });
});
