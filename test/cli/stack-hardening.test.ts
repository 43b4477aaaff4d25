/**
 * Issue 16 settings of `latchkey up` reach the pieces they configure (cli/src/stack.ts is the
 * composition root): the HTTP failure limit, trusted proxies and retention.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveUpConfig } from '../../cli/src/config.ts';
import { startStack, type Stack } from '../../cli/src/stack.ts';

const ADMIN_TOKEN = 'stack-admin-token-0123456789abcdef';
let stack: Stack | null = null;
let dir = '';
afterEach(async () => {
  await stack?.close();
  stack = null;
  rmSync(dir, { recursive: true, force: true });
});

const clock = Object.assign(() => clock.now, { now: Date.now() });

async function up(flags: Record<string, string>): Promise<Stack> {
  dir = mkdtempSync(path.join(tmpdir(), 'latchkey-stack-'));
  const config = resolveUpConfig({ 'data-dir': dir, 'http-port': '0', 'mqtt-port': '0', 'admin-token': ADMIN_TOKEN, ...flags }, {});
  stack = await startStack(config, { log: pino({ level: 'silent' }), clock });
  return stack;
}

const enrollJunk = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/enroll`, { method: 'POST', headers: { authorization: 'Bearer junk', 'content-type': 'application/json', ...headers }, body: '{}' });

describe('latchkey up: HTTP throttling settings', () => {
  it('--http-auth-failure-limit reaches HTTP; the admin token still passes', async () => {
    const s = await up({ 'http-auth-failure-limit': '2' });
    const url = s.addresses.http.url;
    expect((await enrollJunk(url)).status).toBe(401);
    expect((await enrollJunk(url)).status).toBe(401);
    expect((await enrollJunk(url)).status).toBe(429);
    expect((await fetch(`${url}/v1/devices`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
  });

  it('--trust-proxy makes X-Forwarded-For name the client, for HTTP and MQTT over WebSocket', async () => {
    const s = await up({ 'http-auth-failure-limit': '1', 'trust-proxy': '127.0.0.1' });
    const url = s.addresses.http.url;
    expect((await enrollJunk(url, { 'x-forwarded-for': '198.51.100.1' })).status).toBe(401);
    expect((await enrollJunk(url, { 'x-forwarded-for': '198.51.100.1' })).status).toBe(429);
    expect((await enrollJunk(url, { 'x-forwarded-for': '198.51.100.2' })).status).toBe(401);
    // and the broker's WebSocket listener gets the same proxies (test/broker/forwarded-for.test.ts)
    expect(s.broker.config.trustProxy).toEqual(['127.0.0.1']);
  });
});

describe('latchkey up: retention settings', () => {
  it('--audit-retention and --audit-max-refusals reach the background pruning', async () => {
    const s = await up({ 'audit-retention': '2h', 'audit-max-refusals': '1000' });
    const refuse = (principal: string) => s.registry.recordAuthFailure({ principal, clientId: principal, reason: 'unknown_principal', remoteAddress: '10.0.0.1', at: clock() });
    for (let i = 0; i < 1_200; i++) await refuse('ghost-1');
    expect(await s.retention.runOnce()).toEqual({ audit: 0, refusals: 200, enrollmentTokens: 0, changes: 0 });
    clock.now += 2 * 3_600_000 + 1;
    await refuse('ghost-2');
    expect(await s.retention.runOnce()).toEqual({ audit: 1_000, refusals: 0, enrollmentTokens: 0, changes: 0 });
    expect((await s.registry.audit.list({ limit: 10 })).map((e) => e.target)).toEqual(['ghost-2']);
  });
});

describe('latchkey up: --database-url', () => {
  it('a PostgreSQL registry that cannot be reached fails the start with one line naming the setting, the password nowhere', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'latchkey-stack-'));
    // a closed port: nothing listens there
    const config = resolveUpConfig({ 'data-dir': dir, 'http-port': '0', 'mqtt-port': '0', 'admin-token': ADMIN_TOKEN, 'database-url': 'postgres://latchkey:pg-s3cret-pw@127.0.0.1:1/latchkey' }, {});
    const lines: string[] = [];
    const log = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
    const err = await startStack(config, { log, clock }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'startup_failed' });
    const message = (err as Error).message;
    expect(message).toContain('--database-url');
    expect(message).toContain('postgres://latchkey:***@127.0.0.1:1/latchkey');
    expect(message).not.toContain('pg-s3cret-pw');
    expect(lines.join('\n')).not.toContain('pg-s3cret-pw');
  });
});
