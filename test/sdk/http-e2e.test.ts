/**
 * The SDK against the whole stack: provisioning HTTP API (buildApp) + broker + SQLite registry.
 * Enrollment, clock correction, and commands/config/state driven through the HTTP API.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient, DeviceClientError, enroll, fetchClockOffset, generateDeviceKeyPair, publicKeyToPem } from '@latchkey/device-sdk';
import { sign as cryptoSign } from 'node:crypto';
import { closeAll, startStack, waitFor, type Stack } from './helpers/stack.ts';

let stack: Stack | null = null;
const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  await closeAll(closers);
  await stack?.close();
  stack = null;
});

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(DeviceClientError);
  return (e as DeviceClientError).code;
}

describe('enroll() (zero-touch enrollment)', () => {
  it('registers the device with a one-time token and a proof; the device then connects', async () => {
    stack = await startStack();
    const http = await stack.startHttp();
    const created = await http.admin('POST', '/v1/enrollment-tokens', { uses: 1, ttlSeconds: 600 });
    expect(created.status).toBe(201);
    const pair = generateDeviceKeyPair();

    const device = await enroll({ provisioningUrl: http.url, enrollmentToken: created.body.token, deviceId: 'lock-9', privateKey: pair.privateKey });
    expect(device.id).toBe('lock-9');
    expect(device.credentials).toHaveLength(1);
    expect(JSON.stringify(device)).not.toContain('PRIVATE');

    const client = await DeviceClient.connect({ deviceId: 'lock-9', brokerUrl: stack.brokerUrl, privateKey: pair.privateKey });
    closers.push(() => client.close());
    expect(client.connected).toBe(true);

    // the token had one use
    const again = enroll({ provisioningUrl: http.url, enrollmentToken: created.body.token, deviceId: 'lock-10', privateKey: generateDeviceKeyPair().privateKey });
    expect(await code(again)).toBe('enrollment_token_invalid');
  });

  it('surfaces the API codes: a proof from another key, an unknown token, an unreachable API', async () => {
    stack = await startStack();
    const http = await stack.startHttp();
    const { body } = await http.admin('POST', '/v1/enrollment-tokens', { uses: 5, ttlSeconds: 600 });
    const pair = generateDeviceKeyPair();
    const other = generateDeviceKeyPair();
    const wrongSigner = async (data: Uint8Array) => new Uint8Array(cryptoSign('sha256', data, { key: other.privateKey, dsaEncoding: 'ieee-p1363' }));
    const base = { provisioningUrl: http.url, deviceId: 'lock-11' };

    expect(await code(enroll({ ...base, enrollmentToken: body.token, sign: wrongSigner, publicKey: publicKeyToPem(pair.publicKey) }))).toBe('proof_invalid');
    expect(await code(enroll({ ...base, enrollmentToken: 'lket.nope.nope', privateKey: pair.privateKey }))).toBe('enrollment_token_invalid');
    // a failed enrollment consumed nothing: the same token still works
    const ok = await enroll({ ...base, enrollmentToken: body.token, sign: async (d) => new Uint8Array(cryptoSign('sha256', d, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' })), publicKey: pair.publicKey });
    expect(ok.id).toBe('lock-11');
    expect(await code(enroll({ ...base, enrollmentToken: body.token, privateKey: generateDeviceKeyPair().privateKey }))).toBe('device_exists');
    expect(await code(enroll({ ...base, deviceId: 'lock-12', enrollmentToken: body.token, privateKey: pair.privateKey }))).toBe('key_in_use');
    expect(await code(enroll({ ...base, provisioningUrl: 'http://127.0.0.1:1', enrollmentToken: body.token, privateKey: pair.privateKey }))).toBe('network_error');
    await expect(enroll({ ...base, enrollmentToken: body.token, sign: wrongSigner })).rejects.toBeInstanceOf(TypeError); // sign needs publicKey
  });
});

describe('clock correction', () => {
  const SKEW_MS = 2 * 3600 * 1000; // the device believes it is two hours earlier than it is

  it('fetchClockOffset measures the server clock; connect applies it with provisioningUrl or clockOffsetMs', async () => {
    const serverClock = () => Date.now() + SKEW_MS;
    stack = await startStack({}, serverClock);
    const http = await stack.startHttp();
    const d = await stack.device('thermo-1');
    const offset = await fetchClockOffset(http.url);
    expect(Math.abs(offset - SKEW_MS)).toBeLessThan(2_000); // second resolution + request time

    // without correction the token is two hours stale: the broker refuses it (CONNACK 4)
    const base = { deviceId: 'thermo-1', brokerUrl: stack.brokerUrl, privateKey: d.privateKey };
    expect(await code(DeviceClient.connect(base))).toBe('bad_credentials');

    const corrected = await DeviceClient.connect({ ...base, provisioningUrl: http.url });
    closers.push(() => corrected.close());
    expect(corrected.connected).toBe(true);
    await corrected.close();

    const given = await DeviceClient.connect({ ...base, clockOffsetMs: offset });
    closers.push(() => given.close());
    expect(given.connected).toBe(true);
  });

  it('fetchClockOffset reports network_error and invalid_response', async () => {
    stack = await startStack();
    const http = await stack.startHttp();
    expect(await code(fetchClockOffset('http://127.0.0.1:1'))).toBe('network_error');
    expect(await code(fetchClockOffset(`${http.url}/v1/devices`))).toBe('http_error'); // 404: not a time endpoint
  });
});

describe('commands, config and state through the HTTP API', () => {
  it('POST /v1/devices/{id}/commands reaches onCommand and returns its reply', async () => {
    stack = await startStack();
    const http = await stack.startHttp();
    const d = await stack.device('lock-1');
    const client = await DeviceClient.connect({ deviceId: 'lock-1', brokerUrl: stack.brokerUrl, privateKey: d.privateKey });
    closers.push(() => client.close());
    await client.onCommand('unlock', (params) => ({ unlocked: true, params }));
    const res = await http.admin('POST', '/v1/devices/lock-1/commands', { name: 'unlock', params: { door: 'front' }, timeoutMs: 5000 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, result: { unlocked: true, params: { door: 'front' } } });
  });

  it('PUT /v1/devices/{id}/config is delivered on subscribe (retained) and on change', async () => {
    stack = await startStack();
    const http = await stack.startHttp();
    const d = await stack.device('lock-2');
    expect((await http.admin('PUT', '/v1/devices/lock-2/config', { config: { autoLock: false } })).status).toBe(200);
    const client = await DeviceClient.connect({ deviceId: 'lock-2', brokerUrl: stack.brokerUrl, privateKey: d.privateKey });
    closers.push(() => client.close());
    const got: unknown[] = [];
    await client.onConfig((config, { version }) => void got.push({ version, config }));
    await waitFor(() => got.length === 1);
    const put = await http.admin('PUT', '/v1/devices/lock-2/config', { config: { autoLock: true } });
    await waitFor(() => got.length === 2);
    expect(got).toEqual([
      { version: 1, config: { autoLock: false } },
      { version: put.body.version, config: { autoLock: true } },
    ]);

    await client.reportState({ locked: true }); // acknowledged by the broker, which stores it
    let state = await http.admin('GET', '/v1/devices/lock-2/state');
    for (let i = 0; i < 100 && state.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      state = await http.admin('GET', '/v1/devices/lock-2/state');
    }
    expect(state.body.state).toEqual({ locked: true });
  });
});
