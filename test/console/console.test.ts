import { afterEach, describe, expect, it } from 'vitest';
import { AUTH_FAILURE_CODES, parsePublicKey } from '@latchkey/device-sdk/protocol';
import { CONTENT_SECURITY_POLICY, DEFAULT_SESSION_LIMITS, html, raw, REFUSAL_WORDS, SafeHtml } from '../../console/src/index.ts';
import { commandResult } from '../../console/src/pages/device.ts';
import { capturingLogger, deviceKey } from '../provisioning/http-fixture.ts';
import { openSse } from '../helpers/sse.ts';
import { ADMIN_TOKEN, startConsoleApp, type ConsoleApp } from './helpers/console-app.ts';

const HOSTILE = `<img src=x onerror=alert(1)>"'&<script>alert(2)</script>`;
const ESCAPED = '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;&lt;script&gt;alert(2)&lt;/script&gt;';

let c: ConsoleApp | null = null;
afterEach(async () => {
  await c?.close();
  c = null;
});

const register = (app: ConsoleApp, id: string, metadata: Record<string, unknown> = {}) =>
  app.registry.devices.create({ id, key: parsePublicKey(deviceKey().pem), metadata }, 'admin');

describe('the html tag', () => {
  it('escapes every interpolated value, joins arrays, keeps SafeHtml and drops null/undefined/false', () => {
    expect(html`<p title="${HOSTILE}">${HOSTILE}</p>`.text).toBe(`<p title="${ESCAPED}">${ESCAPED}</p>`);
    expect(html`<ul>${['a<', 'b>'].map((x) => html`<li>${x}</li>`)}</ul>`.text).toBe('<ul><li>a&lt;</li><li>b&gt;</li></ul>');
    expect(html`${null}${undefined}${false}${0}${raw('<br>')}`.text).toBe('0<br>');
    expect(html`${'x'}`).toBeInstanceOf(SafeHtml);
  });

  it('has plain words for every refusal reason of the protocol core', () => {
    expect(Object.keys(REFUSAL_WORDS).sort()).toEqual([...AUTH_FAILURE_CODES].sort());
    expect(REFUSAL_WORDS.token_expired).toBe('token expired');
    expect(REFUSAL_WORDS.signature_invalid).toBe('signature does not match any registered key');
  });
});

describe('escaping of every rendered field', () => {
  it('metadata, config, state, refusals, audit details and a device reply render as text', async () => {
    c = await startConsoleApp();
    await register(c, 'esc-1', { [HOSTILE]: HOSTILE, nested: { x: HOSTILE } });
    await c.registry.configState.setConfig('esc-1', { note: HOSTILE }, undefined, 'admin');
    await c.registry.saveState('esc-1', JSON.stringify({ note: HOSTILE }), c.clock());
    await c.registry.recordAuthFailure({ principal: 'esc-1', clientId: 'esc-1', reason: HOSTILE, remoteAddress: HOSTILE, at: c.clock() });
    await c.registry.recordAuthFailure({ principal: null, clientId: HOSTILE, reason: 'client_id_invalid', remoteAddress: null, at: c.clock() });
    await c.registry.enrollment.create({ tokenId: 'tok123456789', secretHash: new Uint8Array(32), uses: 1, expiresAt: c.clock() + 1000, idPattern: 'a[<]b', metadata: {} }, 'admin');
    const { cookie } = await c.signIn();
    for (const url of ['/console/devices', '/console/devices/esc-1', '/console/audit', '/console/audit?deviceId=esc-1', '/console/health', '/console/enrollment-tokens']) {
      const res = await c.get(url, cookie);
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).not.toContain('<img');
      expect(res.body, url).not.toContain('<script>alert');
      expect(res.body, url).not.toContain('a[<]b');
    }
    const device = (await c.get('/console/devices/esc-1', cookie)).body;
    expect(device).toContain(ESCAPED); // metadata key and value as text
    expect(device).toContain(`refused (${ESCAPED})`); // an unknown reason, shown as it is
    expect((await c.get('/console/audit', cookie)).body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect((await c.get('/console/enrollment-tokens', cookie)).body).toContain('a[&lt;]b');
    const reply = commandResult('esc-1', { kind: 'reply', ok: false, error: HOSTILE }).text;
    expect(reply).toContain(ESCAPED);
    expect(commandResult('esc-1', { kind: 'reply', ok: true, result: { x: HOSTILE } }).text).not.toContain('<img');
  });

  it('a 404 on a console path is an HTML page; /v1 keeps problem+json', async () => {
    c = await startConsoleApp();
    const { cookie } = await c.signIn();
    const missing = await c.get('/console/devices/nope-1', cookie);
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^text\/html/);
    expect(missing.body).toContain('No device nope-1 is registered');
    expect((await c.get('/console/no-such-page', cookie)).headers['content-type']).toMatch(/^text\/html/);
    expect((await c.get('/v1/nothing')).headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('bad addresses', () => {
  it('a bad filter, prefix or page link is a 400 page that repeats nothing unescaped', async () => {
    c = await startConsoleApp();
    const { cookie } = await c.signIn();
    for (const url of ['/console/devices?status=everything', `/console/devices?q=${encodeURIComponent(HOSTILE)}`, '/console/devices?after=a&before=b', '/console/audit?before=x']) {
      const res = await c.get(url, cookie);
      expect(res.statusCode, url).toBe(400);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).not.toContain('<img');
    }
    const audit = await c.get(`/console/audit?deviceId=${encodeURIComponent(HOSTILE)}`, cookie);
    expect(audit.statusCode).toBe(400);
    expect(audit.body).toContain(`value="${ESCAPED}"`);
    expect(audit.body).toContain('aria-invalid="true"');
    expect((await c.get('/console/devices/%3Cimg%3E', cookie)).statusCode).toBe(404);
  });
});

describe('headers', () => {
  it('every page has the strict CSP, no-store, nosniff, no framing and a Server-Timing; assets are immutable and gzipped', async () => {
    c = await startConsoleApp();
    const { cookie } = await c.signIn();
    const login = await c.get('/console/login');
    for (const res of [login, await c.get('/console/devices', cookie), await c.get('/console/health', cookie)]) {
      expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['referrer-policy']).toBe('same-origin');
      expect(res.headers['server-timing']).toMatch(/^app;dur=\d+\.\d\d$/);
      expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)/); // no inline script
      expect(res.body).not.toMatch(/\sstyle=|<style/); // no inline style
      expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin
    }
    const js = /src="(\/console\/assets\/console\.[0-9a-f]{8}\.js)"/.exec(login.body)![1]!;
    const asset = await c.app.inject({ method: 'GET', url: js, headers: { 'accept-encoding': 'gzip' } });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-encoding']).toBe('gzip');
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });
});

describe('sign-in and sessions', () => {
  it('refuses a wrong token with the form again, then throttles wrong ones; the right token always gets an HttpOnly, SameSite=Strict cookie', async () => {
    c = await startConsoleApp({ http: { authFailureLimit: 3 } });
    const wrong = await c.post('/console/login', { token: 'not-the-token' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('That is not the admin token.');
    expect(wrong.body).toContain('aria-invalid="true"');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    await c.post('/console/login', { token: 'x' });
    await c.post('/console/login', { token: 'y' });
    const throttled = await c.post('/console/login', { token: 'z' });
    expect(throttled.statusCode).toBe(429);
    expect(throttled.headers['retry-after']).toBe('60');
    // one budget with the API's admin token: its wrong bearer tokens from this address are throttled too
    const app = c.app;
    const api = (token: string) => app.inject({ method: 'GET', url: '/v1/devices', headers: { authorization: `Bearer ${token}` } });
    expect((await api('not-the-token-either')).statusCode).toBe(429);
    // ... and the right token is never throttled, by either door
    expect((await api(ADMIN_TOKEN)).statusCode).toBe(200);
    const ok = await c.post('/console/login', { token: ADMIN_TOKEN, next: '/console/health' });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/console/health');
    const cookie = String(ok.headers['set-cookie']);
    expect(cookie).toMatch(/^lk_session=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    expect(cookie).not.toContain('Secure'); // plain HTTP here
    c.clock.advance(60_000); // a new window: a wrong token is refused again, not throttled
    expect((await c.post('/console/login', { token: 'x' })).statusCode).toBe(401);
  });

  it('goes only to console paths after sign-in', async () => {
    c = await startConsoleApp();
    for (const next of ['//evil.example/x', 'https://evil.example/', '/console//evil.example', '/v1/devices', 'javascript:alert(1)']) {
      expect((await c.post('/console/login', { token: ADMIN_TOKEN, next })).headers.location, next).toBe('/console/devices');
    }
  });

  it('marks the cookie Secure when the browser came over TLS (through a trusted proxy)', async () => {
    c = await startConsoleApp({ http: { trustProxy: ['loopback'] } });
    const res = await c.post('/console/login', { token: ADMIN_TOKEN }, undefined, { 'x-forwarded-proto': 'https', origin: 'https://console.test' });
    expect(res.statusCode).toBe(303);
    expect(String(res.headers['set-cookie'])).toMatch(/; Secure$/);
  });

  it('ends a session after the idle time, and after the absolute time however active', async () => {
    c = await startConsoleApp();
    const { cookie } = await c.signIn();
    const open = async () => (await c!.get('/console/devices', cookie)).statusCode;
    c.clock.advance(DEFAULT_SESSION_LIMITS.idleMs - 1);
    expect(await open()).toBe(200); // used just in time: idle clock restarts
    c.clock.advance(DEFAULT_SESSION_LIMITS.idleMs);
    const expired = await c.get('/console/devices', cookie);
    expect(expired.statusCode).toBe(303);
    expect(expired.headers.location).toBe('/console/login?next=%2Fconsole%2Fdevices');

    const second = await c.signIn();
    const step = DEFAULT_SESSION_LIMITS.idleMs / 2;
    let elapsed = 0;
    while (elapsed + step < DEFAULT_SESSION_LIMITS.absoluteMs) {
      c.clock.advance(step);
      elapsed += step;
      expect((await c.get('/console/health', second.cookie)).statusCode).toBe(200);
    }
    c.clock.advance(DEFAULT_SESSION_LIMITS.absoluteMs - elapsed);
    expect((await c.get('/console/health', second.cookie)).statusCode).toBe(303);
  });

  it('signing out ends the session and clears the cookie; a POST without a session is refused', async () => {
    c = await startConsoleApp();
    const { cookie, csrf } = await c.signIn();
    const out = await c.post('/console/logout', { _csrf: csrf }, cookie);
    expect(out.statusCode).toBe(303);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await c.get('/console/devices', cookie)).statusCode).toBe(303);
    const after = await c.post('/console/devices/x-1/block', { _csrf: csrf }, cookie);
    expect(after.statusCode).toBe(401);
    expect(after.body).toContain('Your session has ended');
  });

  it('never logs the admin token, a session id or a CSRF token', async () => {
    const lines: string[] = [];
    c = await startConsoleApp({ log: capturingLogger(lines, 'trace') });
    await register(c, 'log-1');
    const { cookie, csrf } = await c.signIn();
    await c.post('/console/devices/log-1/block', { _csrf: csrf }, cookie);
    await c.post('/console/login', { token: `${ADMIN_TOKEN}-wrong` });
    const log = lines.join('');
    expect(log.length).toBeGreaterThan(0);
    expect(log).toContain('console sign-in');
    for (const secret of [ADMIN_TOKEN, cookie.split('=')[1]!, csrf]) expect(log).not.toContain(secret);
  });
});

describe('CSRF and the same-origin check', () => {
  it('refuses a change without the token, with a wrong one, cross-site or from another origin; nothing changes', async () => {
    c = await startConsoleApp();
    await register(c, 'csrf-1');
    const { cookie, csrf } = await c.signIn();
    const attempts: Array<[Record<string, string>, Record<string, string>, string]> = [
      [{}, {}, 'csrf_token_invalid'],
      [{ _csrf: 'x'.repeat(43) }, {}, 'csrf_token_invalid'],
      [{ _csrf: csrf }, { 'sec-fetch-site': 'cross-site' }, 'cross_site_request'],
      [{ _csrf: csrf }, { 'sec-fetch-site': 'same-site' }, 'cross_site_request'],
      [{ _csrf: csrf }, { origin: 'http://evil.example' }, 'cross_site_request'],
    ];
    for (const [fields, headers, code] of attempts) {
      const res = await c.post('/console/devices/csrf-1/block', fields, cookie, headers);
      expect(res.statusCode, JSON.stringify([fields, headers])).toBe(403);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain(`HTTP 403 (<code>${code}</code>)`);
      expect((await c.registry.devices.get('csrf-1')).blocked).toBe(false);
    }
    expect((await c.post('/console/login', { token: ADMIN_TOKEN }, undefined, { 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    // a client that sends neither header (curl) still needs the cookie and the token
    const ok = await c.app.inject({
      method: 'POST',
      url: '/console/devices/csrf-1/block',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${csrf}`,
    });
    expect(ok.statusCode).toBe(303);
    expect((await c.registry.devices.get('csrf-1')).blocked).toBe(true);
  });

  it('the health page counts a summary of repeated refusals with its count, in the minute its window began', async () => {
    c = await startConsoleApp();
    await register(c, 'flood-1');
    const { cookie } = await c.signIn();
    const began = c.clock();
    await c.brokerRegistry.recordAuthFailure({ principal: 'flood-1', clientId: 'flood-1', reason: 'token_expired', remoteAddress: '10.0.0.9', at: began });
    c.clock.advance(61_000); // the window ends: the broker writes the summary of the repeats it only counted
    const repeated = { count: 40, reasons: { token_expired: 30, signature_invalid: 10 }, since: began };
    await c.brokerRegistry.recordAuthFailure({ principal: 'flood-1', clientId: 'flood-1', reason: 'signature_invalid', remoteAddress: '10.0.0.9', at: began + 50_000, repeated });
    const page = (await c.get('/console/health', cookie)).body;
    expect(page).toContain('41 refused connects in the last hour; most often: token expired (31).');
    const minute = new Date(Math.floor(began / 60_000) * 60_000).toISOString().slice(0, 16).replace('T', ' ');
    expect(page).toContain(`<tr><td>${minute}</td><td>token expired <code>token_expired</code></td><td>31</td></tr>`);
    expect(page).toContain(`<tr><td>${minute}</td><td>signature does not match any registered key <code>signature_invalid</code></td><td>10</td></tr>`);
    expect(page).toMatch(/<a href="\/console\/devices\/flood-1">flood-1<\/a><\/th><td>41<\/td>/);
    expect((await c.get('/console/audit?deviceId=flood-1', cookie)).body).toContain('<strong>40 more refused (last: signature does not match any registered key)</strong>');
  });

  it('changes go through the HTTP API: the audit shows them, and refusals come back in words', async () => {
    c = await startConsoleApp();
    await register(c, 'api-1');
    const { cookie, csrf } = await c.signIn();
    const bad = await c.post('/console/devices/api-1/credentials', { _csrf: csrf, publicKey: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }, cookie);
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="publicKey-error" class="field-error">invalid public key/);
    const conflict = await c.post('/console/devices/api-1/config', { _csrf: csrf, config: '{"a":1}', ifVersion: '3' }, cookie);
    expect(conflict.statusCode).toBe(409);
    expect(conflict.body).toContain('it changed since you loaded version 3');
    const notJson = await c.post('/console/devices/api-1/config', { _csrf: csrf, config: '{a:1}', ifVersion: '0' }, cookie);
    expect(notJson.statusCode).toBe(400);
    expect(notJson.body).toContain('The config is not valid JSON');
    const saved = await c.post('/console/devices/api-1/config', { _csrf: csrf, config: '{"a":1}', ifVersion: '0' }, cookie);
    expect(saved.statusCode).toBe(303);
    expect(await c.registry.configState.getConfig('api-1')).toMatchObject({ version: 1, config: { a: 1 } });
    expect((await c.registry.audit.list({ limit: 5, target: 'api-1' })).map((e) => [e.actor, e.action])).toContainEqual(['admin', 'config.set']);
    const offline = await c.post('/console/devices/api-1/commands', { _csrf: csrf, name: 'unlock', params: '', timeoutMs: '500' }, cookie, { 'x-console-fragment': 'command-result' });
    expect(offline.body).toContain('api-1 is offline: it has no live MQTT session, so the command was not sent.');
  });
});

describe('the console event stream', () => {
  it('needs a session, starts with hello and the snapshot, adds refusal words, and ends on app.close()', async () => {
    c = await startConsoleApp();
    await register(c, 'sse-1');
    const { cookie } = await c.signIn();
    const url = await c.listen();
    const anonymous = await openSse(`${url}/console/events`);
    expect(anonymous.status).toBe(401);
    anonymous.close();
    const sse = await openSse(`${url}/console/events?deviceId=sse-1`, { cookie });
    expect(sse.status).toBe(200);
    expect(sse.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect((await sse.next()).event).toBe('hello');
    expect((await sse.next()).json).toMatchObject({ deviceId: 'sse-1', connected: false, blocked: false });
    await c.brokerRegistry.recordAuthFailure({ principal: 'sse-1', clientId: 'sse-1', reason: 'token_expired', remoteAddress: null, at: c.clock() });
    expect((await sse.next('refusal')).json).toMatchObject({ deviceId: 'sse-1', reason: 'token_expired', count: 1, text: 'token expired' });
    await c.brokerRegistry.recordLastErrors([['sse-1', 'token_expired', c.clock()]]); // the same flush: each device's last refusal
    expect((await sse.next('status')).json).toMatchObject({ deviceId: 'sse-1', lastError: { code: 'token_expired', text: 'token expired' } });
    await c.brokerRegistry.recordSessionEvents!([{ deviceId: 'sse-1', type: 'connected', at: c.clock() }]);
    expect((await sse.next('status')).json).toMatchObject({ deviceId: 'sse-1', connected: true });
    const closing = c.app.close();
    await sse.ended;
    await closing;
  });
});
