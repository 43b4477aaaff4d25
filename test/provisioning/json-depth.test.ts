/**
 * Issue 16, finding 2: a JSON body nested thousands of levels deep answered 500 with a stack
 * trace. Every JSON body is now depth-checked before it is parsed: 400 json_too_deep, nothing
 * stored, nothing logged above info.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../provisioning/src/json-depth.ts';
import { capturingLogger, deviceKey, startApi, type HttpFixture } from './http-fixture.ts';

/** `levels` nested objects around `inner`, e.g. nest(2, '1') = {"a":{"a":1}} */
const nest = (levels: number, inner = '1') => `${'{"a":'.repeat(levels)}${inner}${'}'.repeat(levels)}`;
/** about the reported body: 4,150 levels, 25 KB */
const DEEP = nest(4150);

describe('jsonDepthExceeds', () => {
  it('counts nesting, not brackets inside strings', () => {
    expect(jsonDepthExceeds('{}', 1)).toBe(false);
    expect(jsonDepthExceeds('{"a":[1,{"b":2}]}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":[1,{"b":2}]}', 2)).toBe(true);
    expect(jsonDepthExceeds('{"a":"[[[[{{{{"}', 1)).toBe(false);
    expect(jsonDepthExceeds('{"a\\"[[[":"\\\\"}', 1)).toBe(false); // escaped quote, then an escaped backslash before the closing quote
    expect(jsonDepthExceeds('{"a":"\\\\"}[[', 1)).toBe(true); // the string ends at \\" so the brackets after it count
    expect(jsonDepthExceeds('[[[[', 3)).toBe(true);
    expect(jsonDepthExceeds('"never closed [[[[', 1)).toBe(false);
    expect(jsonDepthExceeds('[]'.repeat(1000), 1)).toBe(false);
  });

  it('allows exactly MAX_JSON_DEPTH levels', () => {
    expect(MAX_JSON_DEPTH).toBe(64);
    expect(jsonDepthExceeds(nest(64))).toBe(false);
    expect(jsonDepthExceeds(nest(65))).toBe(true);
  });

  it('handles a million levels without recursion', () => {
    expect(jsonDepthExceeds('['.repeat(1_000_000) + ']'.repeat(1_000_000))).toBe(true);
  });
});

let fx: HttpFixture;
const lines: string[] = [];
const key = deviceKey();
beforeAll(async () => {
  fx = await startApi({ log: capturingLogger(lines, 'debug') });
  await fx.api('POST', '/v1/devices', { id: 'deep-1', publicKey: key.pem });
});
afterAll(() => fx.close());

describe('every route refuses a too-deep body with 400 json_too_deep, storing nothing', () => {
  const pem = JSON.stringify(deviceKey().pem);
  it.each([
    ['device metadata', 'POST', '/v1/devices', `{"id":"deep-2","publicKey":${pem},"metadata":${DEEP}}`],
    ['batch items', 'POST', '/v1/devices:batch', `{"devices":[{"id":"deep-3","publicKey":${pem},"metadata":${DEEP}}]}`],
    ['a metadata patch', 'PATCH', '/v1/devices/deep-1', `{"metadata":${DEEP}}`],
    ['a JWK public key', 'POST', '/v1/devices/deep-1/credentials', `{"publicKey":${DEEP}}`],
    ['enrollment-token metadata', 'POST', '/v1/enrollment-tokens', `{"ttlSeconds":60,"metadata":${DEEP}}`],
    ['config', 'PUT', '/v1/devices/deep-1/config', `{"config":${DEEP}}`],
    ['command params', 'POST', '/v1/devices/deep-1/commands', `{"name":"x","params":${DEEP}}`],
    ['a service ACL', 'POST', '/v1/services', `{"name":"deep-svc","publicKey":${pem},"acl":${DEEP}}`],
    ['an enrollment (before its token is even read)', 'POST', '/v1/enroll', `{"deviceId":"deep-4","publicKey":${DEEP},"proof":"x"}`],
  ])('%s', async (_what, method, route, body) => {
    const headers = route === '/v1/enroll' ? {} : undefined;
    const res = await fx.refused(() => fx.api(method, route, body, headers), route === '/v1/enroll' ? 401 : 400, route === '/v1/enroll' ? 'enrollment_token_invalid' : 'json_too_deep');
    expect(JSON.stringify(res)).not.toContain('{"a":{"a"');
  });

  it('a valid enrollment token does not get a too-deep body parsed either', async () => {
    const t = (await fx.api('POST', '/v1/enrollment-tokens', { ttlSeconds: 60 })).body.token as string;
    await fx.refused(() => fx.api('POST', '/v1/enroll', `{"deviceId":"deep-4","publicKey":${DEEP},"proof":"x"}`, { authorization: `Bearer ${t}` }), 400, 'json_too_deep');
  });

  it('accepts 64 levels', async () => {
    const metadata = nest(MAX_JSON_DEPTH - 1); // the body object itself is level 1
    const res = await fx.api('PATCH', '/v1/devices/deep-1', `{"metadata":${metadata}}`);
    expect(res.status).toBe(200);
    await fx.refused(() => fx.api('PATCH', '/v1/devices/deep-1', `{"metadata":${nest(MAX_JSON_DEPTH)}}`), 400, 'json_too_deep');
  });

  it('logs no error and no stack trace for any of them', () => {
    const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown });
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.join('')).not.toMatch(/RangeError|Maximum call stack|"stack"/);
    expect(logged.some((l) => l.msg === 'request refused' && JSON.stringify(l).includes('json_too_deep'))).toBe(true);
  });
});
