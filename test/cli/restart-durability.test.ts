/**
 * Restart durability (issue 11): config set before a restart reaches a device that subscribes
 * after it. The retained `devices/{id}/config` message lives in the broker's persistence (memory in
 * the embedded default) while the config lives in the registry: `latchkey up` re-publishes every
 * config from the registry at start (broker/src/config-seed.ts), before its listeners open.
 * Runs the real composition root (`startStack`, what `latchkey up` runs) twice on the same data,
 * on SQLite (the embedded default) and on PostgreSQL (`--database-url`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveUpConfig } from '../../cli/src/config.ts';
import { startStack, type Stack } from '../../cli/src/stack.ts';
import { mintConnectToken } from '../../device-sdk/src/token/mint-token.ts';
import { BACKENDS } from '../registry/registry-fixture.ts';

const ADMIN_TOKEN = 'restart-admin-token-0123456789abcdef';

/** A database of its own on the test server (the stack migrates its default schema). */
async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.LATCHKEY_TEST_DATABASE_URL as string;
  const name = `lk_restart_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await c.end();
    },
  };
}

describe.each(BACKENDS)('restart durability of latchkey up on %s', (backend) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-restart-'));
  let db: { url: string; drop(): Promise<void> } | null = null;
  let stack: Stack | null = null;
  afterAll(async () => {
    await stack?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function up(): Promise<Stack> {
    const flags: Record<string, string> = { 'data-dir': dir, 'http-port': '0', 'mqtt-port': '0', 'admin-token': ADMIN_TOKEN };
    if (backend === 'postgres') flags['database-url'] = (db ??= await freshDatabase()).url;
    stack = await startStack(resolveUpConfig(flags, {}), { log: pino({ level: 'silent' }) });
    return stack;
  }

  const api = (s: Stack, method: string, route: string, body?: unknown) =>
    fetch(`${s.addresses.http.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  /** Subscribes as the device to its config topic; resolves the retained payloads received within the wait. */
  async function retainedConfig(s: Stack, deviceId: string, password: string): Promise<unknown[]> {
    const client = await mqtt.connectAsync(s.addresses.mqtt!.url, { clientId: deviceId, username: 'x', password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    try {
      const got: unknown[] = [];
      const first = new Promise<void>((resolve) => {
        client.on('message', (_topic, payload, packet) => {
          if (packet.retain) got.push(JSON.parse(payload.toString()));
          resolve();
        });
      });
      await client.subscribeAsync(`devices/${deviceId}/config`, { qos: 1 });
      // retained messages are sent with the SUBACK: none after it means none at all
      await Promise.race([first, new Promise((r) => setTimeout(r, 1500))]);
      return got;
    } finally {
      await client.endAsync(true);
    }
  }

  it('a device that subscribes after a restart gets the latest config version from the registry', { timeout: 60_000 }, async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    let s = await up();
    expect((await api(s, 'POST', '/v1/devices', { id: 'thermo-r1', publicKey: pem })).status).toBe(201);
    expect((await api(s, 'POST', '/v1/devices', { id: 'thermo-r2', publicKey: (generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string) })).status).toBe(201);
    for (const setpoint of [19, 21]) expect((await api(s, 'PUT', '/v1/devices/thermo-r1/config', { config: { setpoint } })).status).toBe(200);
    expect((await api(s, 'PUT', '/v1/devices/thermo-r2/config', { config: { setpoint: 5 } })).status).toBe(200);
    const token = async () => (await mintConnectToken({ subject: 'thermo-r1', privateKey, ttlSeconds: 600 })).token;
    expect(await retainedConfig(s, 'thermo-r1', await token())).toEqual([{ version: 2, config: { setpoint: 21 } }]);

    await s.close();
    stack = null;
    s = await up();
    // the broker's memory store started empty: what the device gets came from the registry
    expect(await retainedConfig(s, 'thermo-r1', await token())).toEqual([{ version: 2, config: { setpoint: 21 } }]);
    // and a config set after the restart replaces it, as before
    expect((await api(s, 'PUT', '/v1/devices/thermo-r1/config', { config: { setpoint: 22 } })).status).toBe(200);
    expect(await retainedConfig(s, 'thermo-r1', await token())).toEqual([{ version: 3, config: { setpoint: 22 } }]);
  });
});
