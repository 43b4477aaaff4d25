import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateAdminToken, resolveHttpConfig } from '../../provisioning/src/index.ts';
import { capturingLogger, ADMIN_TOKEN, deviceKey, problem, signJwt, startApi, type HttpFixture } from './http-fixture.ts';

let fx: HttpFixture;
let ready = true;
const logLines: string[] = [];
beforeAll(async () => {
  fx = await startApi({ log: capturingLogger(logLines, 'debug'), brokerReady: () => ready });
});
afterAll(() => fx.close());

describe('operations', () => {
  it('GET /v1/time answers server epoch seconds from the injected clock', async () => {
    expect((await fx.api('GET', '/v1/time', undefined, {})).body).toEqual({ now: Math.floor(fx.clock() / 1000) });
  });

  it('/healthz is live; /readyz follows the database and the broker', async () => {
    expect((await fx.api('GET', '/healthz', undefined, {})).body).toEqual({ status: 'ok' });
    expect((await fx.api('GET', '/readyz', undefined, {})).body).toEqual({ status: 'ready' });
    ready = false;
    problem(await fx.api('GET', '/readyz', undefined, {}), 503, 'not_ready');
    ready = true;
  });

  it('/readyz answers 503 not_ready when the database is gone', async () => {
    const local = await startApi();
    await local.registry.close();
    problem(await local.api('GET', '/readyz', undefined, {}), 503, 'not_ready');
    // and a request needing the database is a 500 internal_error without detail
    const res = problem(await local.api('GET', '/v1/devices'), 500, 'internal_error');
    expect(res.detail).toBe('Internal error');
    await local.app.close();
  });

  it('/metrics serves Prometheus text with HTTP request counts from the shared registry', async () => {
    await fx.api('GET', '/v1/time', undefined, {});
    const res = await fetch(`${fx.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/latchkey_http_requests_total\{method="GET",route="\/v1\/time",status="200"\} \d+/);
    expect(text).toContain('latchkey_http_request_duration_seconds_bucket');
  });

  it('serves an OpenAPI 3.1 document covering every route, with admin security where needed', async () => {
    const doc = (await fx.api('GET', '/v1/openapi.json', undefined, {})).body;
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, { security?: unknown[] }>>).flatMap(([p, methods]) =>
      Object.entries(methods).map(([m, op]) => [`${m.toUpperCase()} ${p}`, op] as const),
    );
    expect(ops.map(([k]) => k).sort()).toEqual(
      [
        'GET /v1/time', 'GET /healthz', 'GET /readyz', 'GET /metrics', 'POST /v1/enroll',
        'POST /v1/devices', 'POST /v1/devices:batch', 'GET /v1/devices', 'GET /v1/devices/{id}', 'PATCH /v1/devices/{id}',
        'DELETE /v1/devices/{id}', 'POST /v1/devices/{id}/credentials', 'DELETE /v1/devices/{id}/credentials/{kid}',
        'POST /v1/devices/{id}/commands', 'PUT /v1/devices/{id}/config', 'GET /v1/devices/{id}/state',
        'POST /v1/services', 'GET /v1/services', 'GET /v1/services/{name}', 'DELETE /v1/services/{name}',
        'POST /v1/enrollment-tokens', 'GET /v1/enrollment-tokens', 'DELETE /v1/enrollment-tokens/{tokenId}', 'GET /v1/audit',
        'POST /v1/import/gcp',
        'GET /v1/devices/{id}/keys', 'GET /v1/credentials',
      ].sort(),
    );
    for (const [key, op] of ops) {
      const open = /\/v1\/time|healthz|readyz|metrics|enroll$/.test(key);
      const reader = key === 'GET /v1/devices/{id}/keys'; // protocol.md §Service-account API tokens
      if (!open) expect(op.security, key).toEqual(reader ? [{ adminToken: [] }, { serviceToken: [] }] : [{ adminToken: [] }]);
    }
    expect(doc.paths['/v1/devices'].post.requestBody.content['application/json'].schema.required).toEqual(['id', 'publicKey']);
  });

  it('GET /v1/audit lists admin actions newest first, filters by device, pages by cursor', async () => {
    const local = await startApi();
    try {
      await local.api('POST', '/v1/devices', { id: 'aud-1', publicKey: deviceKey().pem });
      await local.api('POST', '/v1/devices', { id: 'aud-2', publicKey: deviceKey().pem });
      await local.api('PATCH', '/v1/devices/aud-1', { blocked: true });
      await local.registry.recordAuthFailure({ principal: 'aud-1', clientId: 'aud-1', reason: 'signature_invalid', remoteAddress: '127.0.0.1', at: local.clock() });
      const all = (await local.api('GET', '/v1/audit')).body;
      expect(all.entries.map((e: { action: string }) => e.action)).toEqual(['auth.failure', 'device.update', 'device.create', 'device.create']);
      expect(all.entries[0]).toMatchObject({ actor: 'broker', target: 'aud-1', detail: { reason: 'signature_invalid' } });
      const p1 = (await local.api('GET', '/v1/audit?deviceId=aud-1&limit=2')).body;
      expect(p1.entries.map((e: { action: string }) => e.action)).toEqual(['auth.failure', 'device.update']);
      const p2 = (await local.api('GET', `/v1/audit?deviceId=aud-1&limit=2&cursor=${p1.nextCursor}`)).body;
      expect(p2).toMatchObject({ entries: [{ action: 'device.create', target: 'aud-1' }], nextCursor: null });
      problem(await local.api('GET', '/v1/audit?deviceId=bad/id'), 400, 'invalid_device_id');
      problem(await local.api('GET', '/v1/audit?limit=5000'), 400, 'validation_failed');
      problem(await local.api('GET', '/v1/audit?cursor=abc'), 400, 'validation_failed');
    } finally {
      await local.close();
    }
  });

  it('never logs the admin token, enrollment tokens, keys or proofs', async () => {
    const k = deviceKey();
    await fx.api('POST', '/v1/devices', { id: 'log-1', publicKey: k.pem });
    const t = (await fx.api('POST', '/v1/enrollment-tokens', { ttlSeconds: 60 })).body.token as string;
    const iat = Math.floor(fx.clock() / 1000);
    const p = signJwt(k.privateKey, { sub: 'log-2', aud: 'latchkey:enroll', iat, exp: iat + 60 });
    await fx.api('POST', '/v1/enroll', { deviceId: 'log-2', publicKey: k.pem, proof: p }, { authorization: `Bearer ${t}` });
    await fx.api('GET', '/v1/devices', undefined, { authorization: 'Bearer some-wrong-admin-token-xyz' });
    const logs = logLines.join('');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).toContain('request refused');
    for (const secret of [ADMIN_TOKEN, t, t.split('.')[2]!, p, 'some-wrong-admin-token-xyz', k.pem.split('\n')[1]!]) expect(logs).not.toContain(secret);
  });
});

describe('admin token file and config', () => {
  it('generates a 0600 token once, then reads it back, tightening loose permissions', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-admin-'));
    try {
      const dataDir = path.join(dir, 'data');
      const first = loadOrCreateAdminToken(dataDir);
      expect(first).toMatchObject({ created: true, path: path.join(dataDir, 'admin-token') });
      expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(statSync(first.path).mode & 0o777).toBe(0o600);
      expect(readFileSync(first.path, 'utf8').trim()).toBe(first.token);
      chmodSync(first.path, 0o644);
      const again = loadOrCreateAdminToken(dataDir);
      expect(again).toEqual({ ...first, created: false });
      expect(statSync(first.path).mode & 0o777).toBe(0o600);
      writeFileSync(first.path, 'short\n');
      expect(() => loadOrCreateAdminToken(dataDir)).toThrow(TypeError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates the config once, naming every bad setting', () => {
    expect(resolveHttpConfig({ adminToken: ADMIN_TOKEN })).toMatchObject({ audience: 'latchkey', bodyLimit: 1_048_576 });
    expect(Object.isFrozen(resolveHttpConfig({ adminToken: ADMIN_TOKEN }))).toBe(true);
    expect(() => resolveHttpConfig({ adminToken: 'short' })).toThrow(/adminToken/);
    expect(() => resolveHttpConfig({ adminToken: ADMIN_TOKEN, bodyLimit: -1, audience: '' })).toThrow(/audience.*bodyLimit|bodyLimit.*audience/);
  });
});
