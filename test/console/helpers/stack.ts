/**
 * The whole `latchkey up` stack in-process (cli/src/stack.ts: registry, broker, HTTP API,
 * console) on port 0 in a temp dir, plus what the browser journeys need: seeding by the batch
 * API, device keys, connect tokens, signing in through the form.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import type { Page } from 'playwright-core';
import { mintConnectToken } from '@latchkey/device-sdk';
import { resolveUpConfig } from '../../../cli/src/config.ts';
import { startStack, type Stack } from '../../../cli/src/stack.ts';

export const ADMIN_TOKEN = 'browser-test-admin-token-0123456789';

export interface DeviceKeys {
  id: string;
  privateKey: KeyObject;
  pem: string;
}

export interface ConsoleStack {
  stack: Stack;
  url: string;
  mqttUrl: string;
  admin(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** registers `count` devices `${prefix}${00000..}` in batches of 10,000 (one key pair each) */
  seed(prefix: string, count: number): Promise<void>;
  /** registers one device with a fresh key (and metadata) */
  device(id: string, metadata?: Record<string, unknown>): Promise<DeviceKeys>;
  /** a raw mqtt.js CONNECT with a token of `keys` minted at `at` (default now); resolves when accepted, rejects when refused */
  connect(keys: DeviceKeys, o?: { mintedAt?: number; ttlSeconds?: number }): Promise<MqttClient>;
  close(): Promise<void>;
}

export function newDeviceKeys(id: string): DeviceKeys {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { id, privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

export async function startConsoleStack(): Promise<ConsoleStack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-browser-'));
  const config = resolveUpConfig({ 'http-port': '0', 'mqtt-port': '0', 'data-dir': dir, 'admin-token': ADMIN_TOKEN }, {});
  const stack = await startStack(config, { log: pino({ level: 'silent' }) });
  const url = stack.addresses.http.url;
  const admin = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(url + route, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text.length > 0 ? JSON.parse(text) : null };
  };
  return {
    stack,
    url,
    mqttUrl: stack.addresses.mqtt!.url,
    admin,
    async seed(prefix, count) {
      for (let start = 0; start < count; start += 10_000) {
        const devices = [];
        for (let i = start; i < Math.min(count, start + 10_000); i++) {
          const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
          devices.push({ id: `${prefix}${String(i).padStart(5, '0')}`, publicKey: publicKey.export({ format: 'jwk' }) });
        }
        const r = await admin('POST', '/v1/devices:batch', { devices });
        if (r.status !== 201) throw new Error(`seeding failed: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
    },
    async device(id, metadata) {
      const keys = newDeviceKeys(id);
      const r = await admin('POST', '/v1/devices', { id, publicKey: keys.pem, ...(metadata ? { metadata } : {}) });
      if (r.status !== 201) throw new Error(`registering ${id} failed: ${r.status}`);
      return keys;
    },
    async connect(keys, o = {}) {
      const mintedAt = o.mintedAt ?? Date.now();
      const { token } = await mintConnectToken({ subject: keys.id, privateKey: keys.privateKey, ttlSeconds: o.ttlSeconds ?? 600, clock: () => mintedAt });
      const client = mqtt.connect(stack.addresses.mqtt!.url, { clientId: keys.id, username: 'x', password: token, protocolVersion: 4, reconnectPeriod: 0 });
      return new Promise((resolve, reject) => {
        client.once('connect', () => resolve(client));
        client.once('error', (e) => {
          client.end(true);
          reject(e);
        });
      });
    },
    async close() {
      await stack.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Signs in through the form, as a person would. */
export async function signIn(page: Page, url: string, token = ADMIN_TOKEN): Promise<void> {
  await page.goto(`${url}/console/login`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('domcontentloaded');
}
