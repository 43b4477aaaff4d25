/**
 * docs/operations.md §Throttles (issue 16, finding 1 and 6): throttling cannot be turned against
 * the operator. A correct admin token or a usable enrollment token is never throttled; admin and
 * enrollment have separate budgets; enrollment failures count per address and per token id;
 * X-Forwarded-For counts only from trusted proxies; the throttle answers before the body is read.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_TOKEN, deviceKey, problem, signJwt, startApi, type HttpFixture } from './http-fixture.ts';
import { send, startReverseProxy, type RawResponse } from './http-client.ts';

let fx: HttpFixture;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function api(config: Parameters<typeof startApi>[0] = {}): Promise<HttpFixture> {
  fx = await startApi(config);
  cleanups.push(() => fx.close());
  return fx;
}

const JUNK = { authorization: 'Bearer lket.AAAAAAAAAAAA.junkjunkjunkjunkjunkjunkjunkjunkjunkjunkjun' };
/** junk naming another token id (the one above uses up its own per-token budget too) */
const JUNK_B = { authorization: 'Bearer lket.BBBBBBBBBBBB.junkjunkjunkjunkjunkjunkjunkjunkjunkjunkjun' };
const junkBody = () => ({ deviceId: 'junk-1', publicKey: deviceKey().pem, proof: 'x' });

async function newToken(uses = 5): Promise<{ token: string; tokenId: string }> {
  const res = await fx.api('POST', '/v1/enrollment-tokens', { ttlSeconds: 600, uses });
  expect(res.status).toBe(201);
  return res.body;
}

function enrollBody(deviceId: string) {
  const k = deviceKey();
  const iat = Math.floor(fx.clock() / 1000);
  return { deviceId, publicKey: k.pem, proof: signJwt(k.privateKey, { sub: deviceId, aud: 'latchkey:enroll', iat, exp: iat + 60 }) };
}

const code = (r: RawResponse) => `${r.status} ${r.body?.code ?? ''}`.trim();

describe('the reported scenario: one address, 30 junk enrollments', () => {
  it('then the correct admin token from the same address gets 200, and a genuine enrollment 201', async () => {
    await api(); // default limit: 30 per minute
    for (let i = 0; i < 30; i++) problem(await fx.api('POST', '/v1/enroll', junkBody(), JUNK), 401, 'enrollment_token_invalid');
    problem(await fx.api('POST', '/v1/enroll', junkBody(), JUNK), 429, 'rate_limited');
    // the admin budget is separate, and a correct admin token is never throttled
    expect((await fx.api('GET', '/v1/devices')).status).toBe(200);
    problem(await fx.api('GET', '/v1/devices', undefined, { authorization: 'Bearer wrong-admin-token-0000' }), 401, 'unauthorized');
    // a usable enrollment token is not throttled for what others at its address did
    const t = await newToken();
    expect((await fx.api('POST', '/v1/enroll', enrollBody('genuine-1'), { authorization: `Bearer ${t.token}` })).status).toBe(201);
  });

  it('the same through a trusted reverse proxy with two clients: only the noisy one is throttled', async () => {
    await api({ config: { trustProxy: ['127.0.0.1'] } });
    const proxy = await startReverseProxy(fx.url);
    cleanups.push(proxy.close);
    const a = { localAddress: '127.0.0.2' };
    const b = { localAddress: '127.0.0.3' };
    for (let i = 0; i < 30; i++) {
      expect(code(await send(proxy.url, { method: 'POST', path: '/v1/enroll', headers: JUNK, body: junkBody(), ...a }))).toBe('401 enrollment_token_invalid');
    }
    expect(code(await send(proxy.url, { method: 'POST', path: '/v1/enroll', headers: JUNK, body: junkBody(), ...a }))).toBe('429 rate_limited');
    // client B behind the same proxy is a different address
    expect(code(await send(proxy.url, { method: 'POST', path: '/v1/enroll', headers: JUNK_B, body: junkBody(), ...b }))).toBe('401 enrollment_token_invalid');
    // client A's admin token passes
    expect((await send(proxy.url, { method: 'GET', path: '/v1/devices', headers: ADMIN, ...a })).status).toBe(200);
    // A cannot escape by forging X-Forwarded-For: the proxy appends A's real address, the rightmost untrusted one counts
    const forged = { ...JUNK_B, 'x-forwarded-for': '203.0.113.9' };
    expect(code(await send(proxy.url, { method: 'POST', path: '/v1/enroll', headers: forged, body: junkBody(), ...a }))).toBe('429 rate_limited');
    // nor by going around the proxy: an untrusted peer's X-Forwarded-For is ignored
    expect(code(await send(fx.url, { method: 'POST', path: '/v1/enroll', headers: forged, body: junkBody(), ...a }))).toBe('429 rate_limited');
    expect(code(await send(fx.url, { method: 'POST', path: '/v1/enroll', headers: { ...JUNK_B, 'x-forwarded-for': '127.0.0.2' }, body: junkBody(), ...b }))).toBe(
      '401 enrollment_token_invalid',
    );
  });

  it('without --trust-proxy, X-Forwarded-For is ignored: every client of a proxy shares its address', async () => {
    await api({ config: { authFailureLimit: 3 } });
    for (let i = 0; i < 3; i++) problem(await fx.api('POST', '/v1/enroll', junkBody(), { ...JUNK, 'x-forwarded-for': '203.0.113.1' }), 401, 'enrollment_token_invalid');
    problem(await fx.api('POST', '/v1/enroll', junkBody(), { ...JUNK_B, 'x-forwarded-for': '203.0.113.2' }), 429, 'rate_limited');
  });
});

describe('budgets', () => {
  it('a correct admin token is never throttled, even once wrong ones from its address are', async () => {
    await api({ config: { authFailureLimit: 3 } });
    const wrong = { authorization: `Bearer ${ADMIN_TOKEN}x` };
    for (let i = 0; i < 3; i++) problem(await fx.api('GET', '/v1/devices', undefined, wrong), 401, 'unauthorized');
    const limited = problem(await fx.api('GET', '/v1/devices', undefined, wrong), 429, 'rate_limited');
    expect(limited.detail).not.toContain(ADMIN_TOKEN);
    expect((await fx.api('GET', '/v1/devices')).status).toBe(200);
    // ...and admin failures do not use up the enrollment budget of the address
    problem(await fx.api('POST', '/v1/enroll', junkBody(), JUNK), 401, 'enrollment_token_invalid');
    fx.clock.advance(60_000);
    problem(await fx.api('GET', '/v1/devices', undefined, wrong), 401, 'unauthorized');
  });

  it('enrollment failures count per token id too: a used-up token from many addresses is throttled, others are not', async () => {
    await api({ config: { authFailureLimit: 5, trustProxy: ['127.0.0.1'] } });
    const spent = await newToken(1);
    expect((await fx.api('POST', '/v1/enroll', enrollBody('first-1'), { authorization: `Bearer ${spent.token}` })).status).toBe(201);
    const from = (n: number) => ({ 'x-forwarded-for': `198.51.100.${n}` });
    // devices that lost the race for the last use, each from its own address
    for (let i = 0; i < 5; i++) {
      problem(await fx.api('POST', '/v1/enroll', enrollBody(`late-${i}`), { authorization: `Bearer ${spent.token}`, ...from(i) }), 401, 'enrollment_token_invalid');
    }
    problem(await fx.api('POST', '/v1/enroll', enrollBody('late-9'), { authorization: `Bearer ${spent.token}`, ...from(9) }), 429, 'rate_limited');
    // another bad token from a fresh address is not affected
    problem(await fx.api('POST', '/v1/enroll', junkBody(), { ...JUNK_B, ...from(10) }), 401, 'enrollment_token_invalid');
    // and the admin behind any of those addresses is not either
    expect((await fx.api('GET', '/v1/enrollment-tokens', undefined, { ...ADMIN, ...from(9) })).status).toBe(200);
  });

  it('guessing the secret of a known token id cannot lock its devices out', async () => {
    await api({ config: { authFailureLimit: 3, trustProxy: ['127.0.0.1'] } });
    const t = await newToken(2);
    const guess = `lket.${t.tokenId}.${'g'.repeat(43)}`;
    for (let i = 0; i < 4; i++) await fx.api('POST', '/v1/enroll', junkBody(), { authorization: `Bearer ${guess}`, 'x-forwarded-for': `192.0.2.${i}` });
    problem(await fx.api('POST', '/v1/enroll', junkBody(), { authorization: `Bearer ${guess}`, 'x-forwarded-for': '192.0.2.99' }), 429, 'rate_limited');
    expect((await fx.api('POST', '/v1/enroll', enrollBody('owner-1'), { authorization: `Bearer ${t.token}`, 'x-forwarded-for': '192.0.2.99' })).status).toBe(201);
  });

  it('httpAuthFailureLimit 0 turns HTTP throttling off', async () => {
    await api({ config: { authFailureLimit: 0 } });
    for (let i = 0; i < 40; i++) problem(await fx.api('POST', '/v1/enroll', junkBody(), JUNK), 401, 'enrollment_token_invalid');
  });
});

/**
 * Sends the headers of a request announcing a 1 MiB JSON body plus its first 1 KiB, then waits:
 * the answer must come although the rest of the body was never sent, so it cannot have been read
 * or parsed.
 */
function answerBeforeBody(port: number, path: string, authorization: string): Promise<{ status: number; unsent: number }> {
  const total = 1024 * 1024;
  const first = Buffer.alloc(1024, ' ');
  first[0] = 0x7b; // '{'
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${authorization}\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
      socket.write(first);
    });
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m !== null && text.includes('\r\n\r\n')) {
        socket.destroy();
        resolve({ status: Number(m[1]), unsent: total - first.length });
      }
    });
    socket.on('error', reject);
    setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer before the body was sent'));
    }, 10_000).unref();
  });
}

describe('the throttle answers before the body is read (finding 6)', () => {
  it('a throttled address announcing a 1 MiB body gets 429 before sending it', async () => {
    await api({ config: { authFailureLimit: 2 } });
    const port = Number(new URL(fx.url).port);
    for (let i = 0; i < 2; i++) problem(await fx.api('POST', '/v1/enroll', junkBody(), JUNK), 401, 'enrollment_token_invalid');
    expect(await answerBeforeBody(port, '/v1/enroll', JUNK.authorization)).toEqual({ status: 429, unsent: 1024 * 1024 - 1024 });
    // admin routes too: a wrong token is refused before its body, throttled or not
    expect((await answerBeforeBody(port, '/v1/devices', 'Bearer wrong-admin-token-1234')).status).toBe(401);
    expect((await answerBeforeBody(port, '/v1/devices', 'Bearer wrong-admin-token-1234')).status).toBe(401);
    expect((await answerBeforeBody(port, '/v1/devices', 'Bearer wrong-admin-token-1234')).status).toBe(429);
    // the service still answers others at once
    expect((await fx.api('GET', '/healthz', undefined, {})).status).toBe(200);
  });
});
