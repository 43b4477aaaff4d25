import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLine, runLatchkey, startUp, tempDir, type RunningStack } from './cli-process.ts';
import { requireTools } from '../helpers/tools.ts';

const mosquitto = requireTools(['mosquitto_pub'], 'apt-get install mosquitto-clients');

/** One CONNECT with mqtt.js; resolves with the CONNACK return code (0 = accepted). */
function connackOf(url: string, clientId: string, password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { clientId, username: 'x', password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    client.on('connect', () => client.end(true, () => resolve(0)));
    client.on('error', (e: Error & { code?: number }) => {
      client.end(true);
      if (typeof e.code === 'number') resolve(e.code);
      else reject(e);
    });
  });
}

describe('latchkey up on port 0 (docs/configuration.md)', { timeout: 60_000 }, () => {
  const tmp = tempDir('up');
  let stack: RunningStack;
  beforeAll(async () => {
    stack = await startUp([], { cwd: tmp.dir });
  });
  afterAll(async () => {
    await stack?.stop();
    tmp.cleanup();
  });

  it('prints parsable http:, mqtt: and admin token lines with the bound ports', () => {
    const http = new URL(stack.httpUrl);
    const mq = new URL(stack.mqttUrl);
    expect(http.protocol).toBe('http:');
    expect(mq.protocol).toBe('mqtt:');
    expect(http.hostname).toBe('127.0.0.1');
    expect(mq.hostname).toBe('127.0.0.1');
    expect(Number(http.port)).toBeGreaterThan(0);
    expect(Number(mq.port)).toBeGreaterThan(0);
    expect(stack.lines.get('admin token')).toBe('data/admin-token');
    // loopback: no exposure warning
    expect(stack.stderr()).not.toContain('warning: insecure_listener');
  });

  it('creates ./data with the database and a 0600 admin token, never logged', () => {
    const tokenFile = path.join(tmp.dir, 'data/admin-token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(existsSync(path.join(tmp.dir, 'data/latchkey.db'))).toBe(true);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(16);
    expect(stack.stderr()).not.toContain(token);
  });

  it('serves HTTP: /healthz and /readyz', async () => {
    expect((await fetch(`${stack.httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${stack.httpUrl}/readyz`)).status).toBe(200);
  });

  it('serves the console from the compiled dist/, with its script and style sheet (console/assets/)', async () => {
    const login = await fetch(`${stack.httpUrl}/console/login`);
    expect(login.status).toBe(200);
    const page = await login.text();
    const assets = [...page.matchAll(/(?:src|href)="(\/console\/assets\/console\.[0-9a-f]{8}\.(?:js|css))"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(2);
    for (const asset of assets) {
      const res = await fetch(stack.httpUrl + asset);
      expect(res.status).toBe(200);
      expect((await res.text()).length).toBeGreaterThan(1000);
    }
  });

  it('accepts an MQTT connect with a token from latchkey token, and refuses a wrong one', async () => {
    expect((await runLatchkey(['keygen', '--out', 'k1'], { cwd: tmp.dir })).code).toBe(0);
    expect((await runLatchkey(['devices', 'add', '--id', 'thermo-1', '--key', 'k1/device.pub.pem', '--url', stack.httpUrl], { cwd: tmp.dir })).code).toBe(0);
    const token = (await runLatchkey(['token', '--device', 'thermo-1', '--key', 'k1/device.key.pem'], { cwd: tmp.dir })).stdout.trim();
    expect(await connackOf(stack.mqttUrl, 'thermo-1', token)).toBe(0);
    expect(await connackOf(stack.mqttUrl, 'thermo-2', token)).toBe(4);
    const other = (await runLatchkey(['token', '--device', 'thermo-1', '--key', 'k1/device.key.pem', '--audience', 'elsewhere'], { cwd: tmp.dir })).stdout.trim();
    expect(await connackOf(stack.mqttUrl, 'thermo-1', other)).toBe(4);
  });

  it.skipIf(mosquitto.skip)(`the token works with mosquitto_pub${mosquitto.note}`, async () => {
    mosquitto.assertPresent();
    const token = (await runLatchkey(['token', '--device', 'thermo-1', '--key', 'k1/device.key.pem'], { cwd: tmp.dir })).stdout.trim();
    const port = new URL(stack.mqttUrl).port;
    const pub = (pw: string) => spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-i', 'thermo-1', '-u', 'x', '-P', pw, '-q', '1', '-t', 'devices/thermo-1/telemetry', '-m', '{"temp":21}'], { encoding: 'utf8', timeout: 15_000 });
    expect(pub(token).status).toBe(0);
    expect(pub(`${token.slice(0, -2)}AA`).status).not.toBe(0);
    // The broker writes device status in batches (once a second by default): wait for the write
    // instead of racing it, which failed whenever the machine was fast enough to ask first.
    let lastConnectedAt: number | null = null;
    for (let tries = 0; lastConnectedAt === null && tries < 40; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 250));
      const shown = await runLatchkey(['devices', 'show', 'thermo-1', '--url', stack.httpUrl], { cwd: tmp.dir });
      lastConnectedAt = (JSON.parse(shown.stdout) as { status: { lastConnectedAt: number | null } }).status.lastConnectedAt;
    }
    expect(lastConnectedAt).not.toBeNull();
  }, 30_000);

  it('a second up on the same data dir and ports fails with one line naming the port setting', async () => {
    const port = new URL(stack.mqttUrl).port;
    const r = await runLatchkey(['up', '--http-port', '0', '--mqtt-port', port], { cwd: tmp.dir });
    expect(r.code).toBe(1);
    expect(errorLine(r.stderr)?.code).toBe('startup_failed');
    expect(errorLine(r.stderr)?.detail).toContain('--mqtt-port');
  });

  it('SIGTERM closes sessions and the database and exits 0 within 5 s', async () => {
    const token = (await runLatchkey(['token', '--device', 'thermo-1', '--key', 'k1/device.key.pem'], { cwd: tmp.dir })).stdout.trim();
    const client = await mqtt.connectAsync(stack.mqttUrl, { clientId: 'thermo-1', username: 'x', password: token, protocolVersion: 4, reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    const started = Date.now();
    const exit = await stack.stop();
    const elapsed = Date.now() - started;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeLessThan(5_000); // docs/configuration.md: within 5 s
    await closed;
    client.end(true);
    // the database was closed cleanly: WAL checkpointed and removed by SQLite
    expect(existsSync(path.join(tmp.dir, 'data/latchkey.db-wal'))).toBe(false);
  });
});

describe('latchkey up beyond loopback', { timeout: 60_000 }, () => {
  const tmp = tempDir('up-exposed');
  afterAll(tmp.cleanup);

  it('warns on stderr that plain MQTT is exposed without TLS', async () => {
    const stack = await startUp(['--host', '0.0.0.0'], { cwd: tmp.dir });
    try {
      expect(stack.httpUrl).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
      const warnings = () => stack.stderr().split('\n').filter((l) => l.startsWith('warning: insecure_listener:'));
      // stderr is a separate pipe: give it until the first HTTP answer to arrive
      await fetch(`http://127.0.0.1:${new URL(stack.httpUrl).port}/healthz`);
      expect(warnings()).toHaveLength(1);
    } finally {
      expect((await stack.stop()).code).toBe(0);
    }
  });

  it('uses a configured admin token and says where it came from', async () => {
    const stack = await startUp(['--data-dir', 'd2'], { cwd: tmp.dir, env: { LATCHKEY_ADMIN_TOKEN: 'k'.repeat(32) } });
    try {
      expect(stack.lines.get('admin token')).toBe('from LATCHKEY_ADMIN_TOKEN');
      expect(existsSync(path.join(tmp.dir, 'd2/admin-token'))).toBe(false);
      const res = await fetch(`${stack.httpUrl}/v1/devices`, { headers: { authorization: `Bearer ${'k'.repeat(32)}` } });
      expect(res.status).toBe(200);
    } finally {
      await stack.stop();
    }
  });
});
