import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeviceClient, generateDeviceKeyPair, mintEnrollProof, publicKeyToPem } from '@latchkey/device-sdk';
import { errorLine, runLatchkey, startUp, tempDir, type RunningStack } from './cli-process.ts';

describe('latchkey devices and enroll-token against a running up (docs/configuration.md, docs/api.md)', { timeout: 60_000 }, () => {
  const tmp = tempDir('devices');
  let stack: RunningStack;
  let adminToken: string;
  /** runs from the directory `up` runs in, so the admin token is found in ./data */
  const cli = (...args: string[]) => runLatchkey([...args], { cwd: tmp.dir });
  beforeAll(async () => {
    stack = await startUp([], { cwd: tmp.dir });
    adminToken = readFileSync(path.join(tmp.dir, 'data/admin-token'), 'utf8').trim();
    expect((await cli('keygen', '--out', 'a')).code).toBe(0);
    expect((await cli('keygen', '--out', 'b')).code).toBe(0);
  });
  afterAll(async () => {
    await stack?.stop();
    tmp.cleanup();
  });
  const url = () => ['--url', stack.httpUrl];

  it('add, show, list, block, unblock, delete round-trip', async () => {
    const added = await cli('devices', 'add', '--id', 'lock-1', '--key', 'a/device.pub.pem', '--metadata', '{"room":"hall"}', ...url());
    expect(added.code, added.stderr).toBe(0);
    const device = JSON.parse(added.stdout);
    expect(device).toMatchObject({ id: 'lock-1', blocked: false, metadata: { room: 'hall' } });
    expect(device.credentials).toHaveLength(1);

    expect(JSON.parse((await cli('devices', 'show', 'lock-1', ...url())).stdout)).toMatchObject({ id: 'lock-1', blocked: false });
    expect(JSON.parse((await cli('devices', 'show', '--id', 'lock-1', ...url())).stdout).id).toBe('lock-1');

    expect(JSON.parse((await cli('devices', 'block', 'lock-1', ...url())).stdout).blocked).toBe(true);
    const blockedList = JSON.parse((await cli('devices', 'list', '--blocked', 'true', '--json', ...url())).stdout) as { id: string }[];
    expect(blockedList.map((d) => d.id)).toEqual(['lock-1']);
    expect(JSON.parse((await cli('devices', 'unblock', 'lock-1', ...url())).stdout).blocked).toBe(false);
    expect(JSON.parse((await cli('devices', 'list', '--blocked', 'true', '--json', ...url())).stdout)).toEqual([]);

    const table = await cli('devices', 'list', ...url());
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+BLOCKED\s+CONNECTED/);
    expect(table.stdout).toMatch(/^lock-1\s+no\s+no\s+1\b/m);
    expect(table.stdout).toMatch(/^lock-1\s+no\s+no\s+1\s+(now|\d+ s ago|\d+ min ago)\s+-\s+-$/m); // created just now, never seen
    expect(table.stdout).not.toMatch(/\d{10,}/); // no epoch milliseconds

    const deleted = await cli('devices', 'delete', 'lock-1', ...url());
    expect(deleted.code).toBe(0);
    const gone = await cli('devices', 'show', 'lock-1', ...url());
    expect(gone.code).toBe(1);
    expect(errorLine(gone.stderr)?.code).toBe('device_not_found');
  });

  it('keys shows each key with when it was last used; remove-key needs --force for a key that just verified a connect (issue 15)', async () => {
    expect((await cli('devices', 'add', '--id', 'lock-2', '--key', 'b/device.pub.pem', ...url())).code).toBe(0);
    const device = await DeviceClient.connect({ deviceId: 'lock-2', brokerUrl: stack.mqttUrl, privateKey: createPrivateKey(readFileSync(path.join(tmp.dir, 'b/device.key.pem'))) });
    await device.close();
    // the broker writes usage in its status batches (about once a second)
    let keys: { kid: string; lastConnectAt: number | null; removedAt: number | null }[] = [];
    await vi.waitFor(async () => {
      keys = JSON.parse((await cli('devices', 'keys', 'lock-2', '--json', ...url())).stdout);
      expect(keys[0]?.lastConnectAt).toEqual(expect.any(Number));
    }, { timeout: 20_000, interval: 200 });
    const table = await cli('devices', 'keys', 'lock-2', ...url());
    expect(table.stdout.split('\n')[0]).toMatch(/^KID\s+FINGERPRINT\s+REGISTERED\s+LAST USED\s+LAST CONNECT\s+REMOVED$/);
    expect(table.stdout).toMatch(new RegExp(`^${keys[0]!.kid}\\s+[0-9a-f]{16}\\s+(now|\\d+ s ago|\\d+ min ago)\\s+(now|\\d+ s ago)\\s+(now|\\d+ s ago)\\s+-$`, 'm'));

    // a kid is random base64url: one in 64 begins with a dash, and is still a value (cli/src/args.ts)
    const dashed = await cli('devices', 'remove-key', 'lock-2', '--kid', '-Xb3dA_9noSuchKid', ...url());
    expect([dashed.code, errorLine(dashed.stderr)?.code], dashed.stderr).toEqual([1, 'credential_not_found']);
    const refused = await cli('devices', 'remove-key', 'lock-2', '--kid', keys[0]!.kid, ...url());
    expect(refused.code, refused.stderr).toBe(1);
    expect(errorLine(refused.stderr)?.code).toBe('credential_in_use');
    const forced = await cli('devices', 'remove-key', 'lock-2', '--kid', keys[0]!.kid, '--force', ...url());
    expect([forced.code, forced.stdout.trim()]).toEqual([0, `removed key ${keys[0]!.kid} of lock-2 (forced)`]);
    const history = JSON.parse((await cli('devices', 'keys', 'lock-2', '--json', ...url())).stdout) as typeof keys;
    expect(history[0]!.removedAt).toEqual(expect.any(Number));

    // fresh keys are not unused for 30 days; bad durations are usage errors
    const unused = await cli('devices', 'keys', '--unused-for', '30d', ...url());
    expect([unused.code, unused.stdout.split('\n')[0]]).toEqual([0, 'DEVICE  KID  FINGERPRINT  REGISTERED  LAST USED  LAST CONNECT']);
    expect(unused.stdout).toContain('(none)');
    for (const bad of ['30', '3w', '0d', '99999999d']) {
      const r = await cli('devices', 'keys', '--unused-for', bad, ...url());
      expect([r.code, errorLine(r.stderr)?.code]).toEqual([2, 'usage']);
    }
    expect((await cli('devices', 'keys', 'lock-2', '--unused-for', '1d', ...url())).code).toBe(2);
    await cli('devices', 'delete', 'lock-2', ...url());
  });

  it('lists every page', async () => {
    for (let i = 0; i < 3; i++) {
      const { publicKey } = generateDeviceKeyPair();
      writeFileSync(path.join(tmp.dir, `p${i}.pem`), publicKeyToPem(publicKey));
      expect((await cli('devices', 'add', '--id', `page-${i}`, '--key', `p${i}.pem`, ...url())).code).toBe(0);
    }
    const all = JSON.parse((await cli('devices', 'list', '--json', ...url())).stdout) as { id: string }[];
    expect(all.map((d) => d.id).filter((id) => id.startsWith('page-')).sort()).toEqual(['page-0', 'page-1', 'page-2']);
    const two = JSON.parse((await cli('devices', 'list', '--json', '--limit', '2', ...url())).stdout) as unknown[];
    expect(two).toHaveLength(2);
  });

  it('prints API errors as "error: <code>: <detail>" with a non-zero exit', async () => {
    const added = await cli('devices', 'add', '--id', 'dup-1', '--key', 'b/device.pub.pem', ...url());
    expect(added.code, added.stderr).toBe(0);
    const dup = await cli('devices', 'add', '--id', 'dup-1', '--key', 'b/device.pub.pem', ...url());
    expect(dup.code).toBe(1);
    expect(errorLine(dup.stderr)?.code).toBe('device_exists');
    const reused = await cli('devices', 'add', '--id', 'dup-2', '--key', 'b/device.pub.pem', ...url());
    expect(errorLine(reused.stderr)?.code).toBe('key_in_use');
    const badId = await cli('devices', 'add', '--id', '1bad', '--key', 'b/device.pub.pem', ...url());
    expect(errorLine(badId.stderr)?.code).toBe('invalid_device_id');
  });

  it('refuses to send a private key, and never prints it', async () => {
    const r = await cli('devices', 'add', '--id', 'priv-1', '--key', 'a/device.key.pem', ...url());
    expect(r.code).toBe(1);
    expect(errorLine(r.stderr)?.code).toBe('private_key_rejected');
    const body = readFileSync(path.join(tmp.dir, 'a/device.key.pem'), 'utf8').split('\n')[1]!;
    expect(r.stderr + r.stdout).not.toContain(body);
    expect((await cli('devices', 'show', 'priv-1', ...url())).code).toBe(1);
  });

  it('finds the admin token in --admin-token, LATCHKEY_ADMIN_TOKEN or ./data, and never echoes a wrong one', async () => {
    const elsewhere = tempDir('devices-elsewhere');
    try {
      const none = await runLatchkey(['devices', 'list', ...url()], { cwd: elsewhere.dir });
      expect(errorLine(none.stderr)?.code).toBe('admin_token_missing');
      const viaEnv = await runLatchkey(['devices', 'list', ...url()], { cwd: elsewhere.dir, env: { LATCHKEY_ADMIN_TOKEN: adminToken } });
      expect(viaEnv.code).toBe(0);
      const viaFlag = await runLatchkey(['devices', 'list', '--admin-token', adminToken, ...url()], { cwd: elsewhere.dir });
      expect(viaFlag.code).toBe(0);
      const wrongToken = 'wrong-admin-token-0123456789';
      const wrong = await runLatchkey(['devices', 'list', '--admin-token', wrongToken, ...url()], { cwd: elsewhere.dir });
      expect(wrong.code).toBe(1);
      expect(errorLine(wrong.stderr)?.code).toBe('unauthorized');
      expect(wrong.stderr).not.toContain(wrongToken);
    } finally {
      elsewhere.cleanup();
    }
  });

  it('reports an unreachable API and usage mistakes', async () => {
    const down = await cli('devices', 'list', '--url', 'http://127.0.0.1:1');
    expect(errorLine(down.stderr)?.code).toBe('api_unreachable');
    for (const args of [['devices'], ['devices', 'frobnicate'], ['devices', 'show'], ['devices', 'add', '--id', 'x-1'], ['devices', 'list', '--blocked', 'maybe'], ['devices', 'add', '--id', 'x-1', '--key', 'a/device.pub.pem', '--metadata', '[1]']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(errorLine(r.stderr)?.code, args.join(' ')).toBe('usage');
    }
  });

  it('enroll-token create prints only a token that enrolls a device', async () => {
    const r = await cli('enroll-token', 'create', '--uses', '1', '--ttl', '600', ...url());
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(r.stderr).toMatch(/expires at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (9|10) min\)/);
    const token = lines[0]!;
    const { privateKey, publicKey } = generateDeviceKeyPair();
    const proof = await mintEnrollProof({ deviceId: 'enrolled-1', privateKey });
    const enroll = () =>
      fetch(`${stack.httpUrl}/v1/enroll`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ deviceId: 'enrolled-1', publicKey: publicKeyToPem(publicKey), proof }),
      });
    expect((await enroll()).status).toBe(201);
    expect(JSON.parse((await cli('devices', 'show', 'enrolled-1', ...url())).stdout).id).toBe('enrolled-1');
    // one use only
    expect((await enroll()).status).toBe(401);
    const bad = await cli('enroll-token', 'create', '--uses', '0', ...url());
    expect(errorLine(bad.stderr)?.code).toBe('usage');
  });
});
