/**
 * The command and config routes against the real broker: its messaging adapter is the API's
 * DeviceMessagingPort (as `latchkey up` wires them), and the devices connect with real tokens.
 */
import type { KeyObject } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { signDeviceMessage } from '../../device-sdk/src/token/sign-message.ts';
import { deviceKey, problem, startApi, type HttpFixture } from './http-fixture.ts';
import { BACKENDS } from '../registry/registry-fixture.ts';

describe.each(BACKENDS)('commands and config on %s', (backend) => {
  let fx: HttpFixture;
  let device: MqttClient;
  const ID = 'thermo-cmd';
  const keys = new Map<string, KeyObject>();

  /** Registers `id` (a device, or `svc:` … through its own route) and keeps its private key. */
  async function register(id: string, body: Record<string, unknown> = {}): Promise<void> {
    const key = deviceKey();
    keys.set(id, key.privateKey);
    const res = id.includes(':')
      ? await fx.api('POST', '/v1/services', { name: id.split(':')[1], publicKey: key.pem, ...body })
      : await fx.api('POST', '/v1/devices', { id, publicKey: key.pem });
    expect(res.status).toBe(201);
  }

  /** An MQTT connection as `clientId`, with a connect token signed by its registered key. */
  async function connect(clientId: string): Promise<MqttClient> {
    const { token } = await mintConnectToken({ subject: clientId, privateKey: keys.get(clientId)!, clock: fx.clock });
    return mqtt.connectAsync(fx.mqttUrl, { clientId, username: clientId, password: token, reconnectPeriod: 0, protocolVersion: 4 });
  }

  /** A device that answers `echo` with its params, `fail` with an error, `garbage` with non-JSON, and ignores the rest. */
  async function connectDevice(id: string): Promise<MqttClient> {
    const client = await connect(id);
    client.on('message', (topic, payload) => {
      const m = /^devices\/[^/]+\/commands\/(.+)$/.exec(topic);
      if (m === null) return;
      const { id: commandId, params } = JSON.parse(payload.toString()) as { id: string; params: unknown };
      const replyTopic = `devices/${id}/replies/${commandId}`;
      if (m[1] === 'echo') client.publish(replyTopic, JSON.stringify({ ok: true, result: { echo: params } }), { qos: 1 });
      if (m[1] === 'fail') client.publish(replyTopic, JSON.stringify({ ok: false, error: 'door jammed' }), { qos: 1 });
      if (m[1] === 'garbage') client.publish(replyTopic, 'not json', { qos: 1 });
      if (m[1] === 'deep') client.publish(replyTopic, `{"ok":true,"result":${'['.repeat(5000)}${']'.repeat(5000)}}`, { qos: 1 });
      // protocol.md §Signed messages: a reply signed with the device's key, or with another one
      const signedReply = (privateKey: KeyObject) =>
        signDeviceMessage({ deviceId: id, topic: replyTopic, payload: { ok: true, result: { signed: params } }, seq: 1, privateKey, clock: fx.clock }).then((jws) =>
          client.publish(replyTopic, jws, { qos: 1 }),
        );
      if (m[1] === 'signed') void signedReply(keys.get(id)!);
      if (m[1] === 'forged') void signedReply(deviceKey().privateKey);
    });
    await client.subscribeAsync(`devices/${id}/commands/#`, { qos: 1 });
    return client;
  }

  beforeAll(async () => {
    // device status is written in batches; none during the test, so `refused` sees an unchanged database
    fx = await startApi({ backend, broker: { statusFlushInterval: 3600 } });
    await register(ID);
    await register('thermo-off');
    device = await connectDevice(ID);
  });
  afterAll(async () => {
    await device.endAsync();
    await fx.close();
  });

  describe('POST /v1/devices/{id}/commands over real MQTT', () => {
    it('publishes {id, params} and returns the device reply', async () => {
      const res = await fx.api('POST', `/v1/devices/${ID}/commands`, { name: 'echo', params: { setpoint: 21.5 } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), ok: true, result: { echo: { setpoint: 21.5 } }, signed: false });
      const fail = await fx.api('POST', `/v1/devices/${ID}/commands`, { name: 'fail' });
      expect(fail.body).toMatchObject({ ok: false, error: 'door jammed' });
      const garbage = await fx.api('POST', `/v1/devices/${ID}/commands`, { name: 'garbage' });
      expect(garbage.body).toMatchObject({ ok: false, error: expect.any(String) });
      expect((await fx.api('GET', `/v1/audit?deviceId=${ID}&limit=1`)).body.entries[0]).toMatchObject({ action: 'command.send', detail: { name: 'garbage' } });
      // a reply nested too deeply to be served back is a malformed reply, not a 500 (issue 16)
      const deep = await fx.api('POST', `/v1/devices/${ID}/commands`, { name: 'deep' });
      expect(deep.status).toBe(200);
      expect(deep.body).toMatchObject({ ok: false, error: 'the device sent a malformed reply' });
    });

    it('verifies a signed reply with the device’s keys: signed true; a reply signed by another key is malformed', async () => {
      const signed = await fx.api('POST', `/v1/devices/${ID}/commands`, { name: 'signed', params: { a: 1 } });
      expect(signed.body).toEqual({ id: expect.any(String), ok: true, result: { signed: { a: 1 } }, signed: true });
      const forged = await fx.api('POST', `/v1/devices/${ID}/commands`, { name: 'forged', params: { a: 1 } });
      expect(forged.body).toEqual({ id: expect.any(String), ok: false, error: 'the device sent a malformed reply', signed: false });
    });

    it('answers 504 command_timeout when the device does not reply in time', async () => {
      problem(await fx.api('POST', `/v1/devices/${ID}/commands`, { name: 'ignored', timeoutMs: 300 }), 504, 'command_timeout');
    });

    it('answers 409 device_offline, 404 device_not_found, 400 for bad commands', async () => {
      await fx.refused(() => fx.api('POST', '/v1/devices/thermo-off/commands', { name: 'echo' }), 409, 'device_offline');
      await fx.refused(() => fx.api('POST', '/v1/devices/nobody-1/commands', { name: 'echo' }), 404, 'device_not_found');
      for (const body of [{ name: 'a/b' }, { name: '+' }, { name: '#' }, { name: '' }, { name: 'x', timeoutMs: 60_001 }, { name: 'x', timeoutMs: 10 }, { name: 'x', params: [] }, {}]) {
        await fx.refused(() => fx.api('POST', `/v1/devices/${ID}/commands`, body), 400, 'validation_failed');
      }
    });

    it('answers 409 device_offline when no messaging is wired in, and still stores config', async () => {
      const bare = await startApi();
      try {
        await bare.api('POST', '/v1/devices', { id: ID, publicKey: deviceKey().pem });
        problem(await bare.api('POST', `/v1/devices/${ID}/commands`, { name: 'echo' }), 409, 'device_offline');
        expect((await bare.api('PUT', `/v1/devices/${ID}/config`, { config: { a: 1 } })).body).toEqual({ version: 1, published: false });
      } finally {
        await bare.close();
      }
    });
  });

  describe('PUT /v1/devices/{id}/config and GET …/state', () => {
    it('bumps the version, publishes it retained, and enforces ifVersion', async () => {
      const got = new Promise<string>((resolve) => device.once('message', (topic, payload) => topic.endsWith('/config') && resolve(payload.toString())));
      await device.subscribeAsync(`devices/${ID}/config`, { qos: 1 });
      expect((await fx.api('PUT', `/v1/devices/${ID}/config`, { config: { mode: 'eco' } })).body).toEqual({ version: 1, published: true });
      expect(JSON.parse(await got)).toEqual({ version: 1, config: { mode: 'eco' } });
      await fx.refused(() => fx.api('PUT', `/v1/devices/${ID}/config`, { config: { mode: 'off' }, ifVersion: 0 }), 409, 'config_version_mismatch');
      expect((await fx.api('PUT', `/v1/devices/${ID}/config`, { config: { mode: 'heat' }, ifVersion: 1 })).body.version).toBe(2);
      expect((await fx.api('GET', `/v1/devices/${ID}`)).body.config).toEqual({ version: 2 });
      // a client subscribing later gets the retained latest version
      await register('svc:late-reader', { acl: { publish: [], subscribe: ['devices/+/config'] } });
      const late = await connect('svc:late-reader');
      const retained = new Promise<string>((resolve) => late.once('message', (_t, p) => resolve(p.toString())));
      await late.subscribeAsync(`devices/${ID}/config`, { qos: 1 });
      expect(JSON.parse(await retained)).toEqual({ version: 2, config: { mode: 'heat' } });
      await late.endAsync();
      await fx.refused(() => fx.api('PUT', '/v1/devices/nobody-1/config', { config: {} }), 404, 'device_not_found');
      await fx.refused(() => fx.api('PUT', `/v1/devices/${ID}/config`, { config: 'x' }), 400, 'validation_failed');
      await fx.refused(() => fx.api('PUT', `/v1/devices/${ID}/config`, { config: { big: 'x'.repeat(70_000) } }), 400, 'validation_failed');
    });

    it('clears the retained config when a device is deleted', async () => {
      await register('gone-1');
      await fx.api('PUT', '/v1/devices/gone-1/config', { config: { a: 1 } });
      expect(await fx.retained('devices/gone-1/config')).toHaveLength(1);
      expect((await fx.api('DELETE', '/v1/devices/gone-1')).status).toBe(204);
      expect(await fx.retained('devices/gone-1/config')).toHaveLength(0);
    });

    it('returns the last reported state', async () => {
      expect((await fx.api('GET', '/v1/devices/thermo-off/state')).body).toEqual({ state: null, reportedAt: null });
      await fx.registry.saveState('thermo-off', '{"temp":20.5}', fx.clock() + 5);
      expect((await fx.api('GET', '/v1/devices/thermo-off/state')).body).toEqual({ state: { temp: 20.5 }, reportedAt: fx.clock() + 5 });
      // a state nested deeper than any API body is not kept (it could not be served back): issue 16
      await fx.registry.saveState('thermo-off', `{"deep":${'['.repeat(5000)}${']'.repeat(5000)}}`, fx.clock() + 6);
      expect((await fx.api('GET', '/v1/devices/thermo-off/state')).body).toEqual({ state: { temp: 20.5 }, reportedAt: fx.clock() + 5 });
      await fx.refused(() => fx.api('GET', '/v1/devices/nobody-1/state'), 404, 'device_not_found');
    });
  });
});
