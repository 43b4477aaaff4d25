/** protocol.md §MQTT CONNECT: TLS and WebSocket listeners by configuration, and an independent client. */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, waitFor, type BrokerFixture, type TestPrincipal } from './helpers/broker-fixture.ts';
import { requireTools } from '../helpers/tools.ts';

const OPENSSL = '/usr/bin/openssl';
const mosquitto = requireTools(['mosquitto_pub'], 'apt-get install mosquitto-clients');

let certDir: string;
let fx: BrokerFixture;
let dev: TestPrincipal;
let cert: string;

beforeAll(async () => {
  // a self-signed server certificate made at test time; its key never leaves the temp dir
  certDir = mkdtempSync(path.join(tmpdir(), 'latchkey-tls-'));
  const key = path.join(certDir, 'server.key');
  const crt = path.join(certDir, 'server.crt');
  execFileSync(OPENSSL, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  cert = readFileSync(crt, 'utf8');
  // tlsCert as PEM text, tlsKey as a path: both forms are accepted
  fx = await startBroker({ mqttsPort: 0, tlsCert: cert, tlsKey: key, wsPort: 0, authFailureLimit: 0 });
  dev = await fx.device('thermo-1');
});
afterAll(async () => {
  await fx.close();
  rmSync(certDir, { recursive: true, force: true });
});

describe('TLS (mqtts)', () => {
  it('connects with a valid token and publishes', async () => {
    const port = fx.broker.addresses.mqtts?.port as number;
    expect(port).toBeGreaterThan(0);
    const got: string[] = [];
    const stop = fx.broker.messaging.subscribe('devices/+/telemetry', (t, p) => got.push(`${t} ${p.toString()}`));
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
      clientId: 'thermo-1', username: 'x', password: await dev.token(), ca: cert, reconnectPeriod: 0, protocolVersion: 4,
    });
    await c.publishAsync('devices/thermo-1/telemetry', 'over-tls', { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['devices/thermo-1/telemetry over-tls']);
    await c.endAsync();
    stop();
  });

  it('refuses a bad token over TLS with CONNACK 4', async () => {
    const port = fx.broker.addresses.mqtts?.port as number;
    const err = await mqtt
      .connectAsync(`mqtts://127.0.0.1:${port}`, { clientId: 'thermo-1', username: 'x', password: 'bad', ca: cert, reconnectPeriod: 0 })
      .then(() => null, (e: { code?: number }) => e);
    expect(err?.code).toBe(4);
  });
});

describe('WebSocket', () => {
  it('connects with a valid token and receives a command', async () => {
    const port = fx.broker.addresses.ws?.port as number;
    const c = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, {
      clientId: 'thermo-1', username: 'x', password: await dev.token(), reconnectPeriod: 0, protocolVersion: 4,
    });
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    await c.subscribeAsync('devices/thermo-1/commands/#', { qos: 1 });
    await fx.broker.messaging.publish('devices/thermo-1/commands/ping', Buffer.from('{"id":"1","params":{}}'), { qos: 1, retain: false });
    await waitFor(() => got.length === 1);
    await c.endAsync();
  });

  it('closes a WebSocket carrying a packet over maxPacketSize', async () => {
    const port = fx.broker.addresses.ws?.port as number;
    const c = await mqtt.connectAsync(`ws://127.0.0.1:${port}`, {
      clientId: 'thermo-1', username: 'x', password: await dev.token(), reconnectPeriod: 0, protocolVersion: 4,
    });
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('devices/thermo-1/telemetry', Buffer.alloc(300 * 1024), { qos: 0 });
    await closed;
  });
});

describe('an independent client: mosquitto_pub', () => {
  it.skipIf(mosquitto.skip)(`publishes QoS 1 with a token as the password${mosquitto.note}`, async () => {
    mosquitto.assertPresent();
    const got: string[] = [];
    const stop = fx.broker.messaging.subscribe('devices/+/telemetry', (t, p) => got.push(`${t} ${p.toString()}`));
    const token = await dev.token();
    const run = (password: string) =>
      new Promise<number>((resolve) => {
        execFile('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(fx.port), '-V', 'mqttv311', '-i', 'thermo-1', '-u', 'x', '-P', password,
          '-t', 'devices/thermo-1/telemetry', '-m', 'hi', '-q', '1'], { timeout: 10_000 }, (err) => resolve(err === null ? 0 : Number(err.code ?? -1)));
      });
    expect(await run(token)).toBe(0);
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['devices/thermo-1/telemetry hi']);
    expect(await run('not-a-token')).not.toBe(0); // refused (CONNACK 4): mosquitto_pub exits non-zero
    expect(got).toHaveLength(1);
    stop();
  });
});
