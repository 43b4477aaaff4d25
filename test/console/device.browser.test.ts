/**
 * Browser journeys on one device's page and the enrollment tokens: keys with fingerprints checked
 * against openssl, block/unblock/delete, config conflict, commands to a simulated lock (reply,
 * offline, timeout), live telemetry with pause, enrollment by a device, CSRF refusals and hostile
 * metadata rendered as text. Every page: axe 0 WCAG 2 A/AA violations, 0 CSP violations, a screenshot.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError, DeviceClient, enroll, generateDeviceKeyPair } from '@latchkey/device-sdk';
import { Lock } from '@latchkey/simulator';
import { axeViolations, expectNoCspViolations, launch, liveOpen, openTab, requireChromium, shot, type Tab } from './helpers/browser.ts';
import { newDeviceKeys, signIn, startConsoleStack, type ConsoleStack } from './helpers/stack.ts';

/** Globals of the page, for functions that playwright runs in the browser (this project compiles without the DOM lib). */
declare const document: any, window: any;

const run = requireChromium('device.browser.test.ts');
const XSS = '<img src=x onerror=alert(document.domain)>';

describe.skipIf(!run)('console in Chromium: a device page', { timeout: 120_000 }, () => {
  let s: ConsoleStack;
  let browser: Browser;
  let tab: Tab;
  let page: Page;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    [s, browser] = await Promise.all([startConsoleStack(), launch()]);
  }, 60_000);
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await browser?.close();
    await s?.close();
  });

  async function checkPage(name: string): Promise<void> {
    expect(tab.problems).toEqual([]);
    expect(tab.dialogs).toEqual([]);
    await expectNoCspViolations(page);
    expect(await axeViolations(page), name).toEqual([]);
    await shot(page, name);
  }
  async function freshTab(): Promise<void> {
    tab = await openTab(browser);
    page = tab.page;
    await signIn(page, s.url);
  }
  const devicePage = async (id: string) => {
    await page.goto(`${s.url}/console/devices/${id}`);
    await liveOpen(page);
  };

  it('adds a key whose fingerprint equals openssl’s, and removes it', async () => {
    await s.device('keys-1');
    await freshTab();
    await devicePage('keys-1');
    const added = newDeviceKeys('keys-1-second');
    await page.getByLabel(/^Public key/).fill(added.pem);
    await page.getByRole('button', { name: 'Add key' }).click();
    await page.waitForSelector('.flash.ok');
    const fingerprints = await page.locator('code.fingerprint').allTextContents();
    expect(fingerprints).toHaveLength(2);
    const der = spawnSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], { input: added.pem });
    expect(der.status).toBe(0);
    const sum = spawnSync('sha256sum', [], { input: der.stdout, encoding: 'utf8' }).stdout.split(' ')[0];
    expect(fingerprints[1]).toBe(sum);
    expect(await page.locator('.flash.ok').textContent()).toContain(sum);
    // a bad key: refused in words next to the field, the input kept
    await page.getByLabel(/^Public key/).fill('not a key');
    await page.getByRole('button', { name: 'Add key' }).click();
    await page.waitForSelector('#publicKey-error');
    expect(await page.getByLabel(/^Public key/).inputValue()).toBe('not a key');
    expect(await page.getByLabel(/^Public key/).getAttribute('aria-invalid')).toBe('true');
    const kid = await page.locator('table tbody th.mono').nth(1).textContent();
    await page.getByRole('button', { name: `Remove key ${kid}` }).click();
    await page.waitForSelector('.flash.ok');
    expect(await page.locator('code.fingerprint').count()).toBe(1);
    await checkPage('device-keys');
    await tab.close();
  });

  it('shows when each key was last used; removing a key in use asks again, and removes it only when told to (issue 15)', async () => {
    const keys = await s.device('inuse-1');
    await freshTab();
    (await s.connect(keys)).end(true);
    // the broker writes the key's last connect with its next status batch (about a second)
    const credentials = async () => (await s.admin('GET', '/v1/devices/inuse-1')).body.credentials as { kid: string; lastConnectAt: number | null }[];
    const kid = (await credentials())[0]!.kid;
    await expect.poll(async () => (await credentials())[0]!.lastConnectAt, { timeout: 10_000 }).not.toBeNull();
    await devicePage('inuse-1');
    expect(await page.locator(`[data-last-used-for="${kid}"]`).textContent()).toMatch(/UTC/); // a time, not "never"
    await page.getByRole('button', { name: `Remove key ${kid}` }).click();
    await page.waitForSelector('h1:has-text("is in use")');
    await checkPage('device-key-in-use');
    expect(await credentials()).toHaveLength(1); // not removed yet
    await page.getByRole('button', { name: 'Remove anyway' }).click();
    await page.waitForSelector('.flash.ok');
    expect(await credentials()).toEqual([]);
    await tab.close();
  });

  it('blocking closes the live session; unblock; delete after typing the id', async () => {
    const keys = await s.device('block-1');
    await freshTab();
    const client = await s.connect(keys);
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    await devicePage('block-1');
    await page.waitForFunction(() => document.querySelector('[data-status-for="block-1"]')?.textContent === 'Connected', null, { timeout: 10_000 });
    await page.getByRole('button', { name: 'Block' }).click();
    await page.waitForURL(/\/block-1\/block/);
    await checkPage('confirm-block');
    await page.getByRole('button', { name: 'Block' }).click();
    await closed; // the broker ended the session
    await page.waitForURL('**/devices/block-1');
    expect(await page.locator('[data-status-for="block-1"]').textContent()).toBe('Blocked');
    await expect(s.connect(keys)).rejects.toThrow(); // and it cannot come back
    await page.getByRole('button', { name: 'Unblock' }).click();
    await page.waitForSelector('.flash.ok');
    // the registry learns of the closed session at the broker's next status flush (≤ 1 s); the page follows live
    await page.waitForFunction(() => document.querySelector('[data-status-for="block-1"]')?.textContent === 'Offline', null, { timeout: 10_000 });
    (await s.connect(keys)).end(true);

    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/\/block-1\/delete/);
    await page.getByLabel('Type the device id to confirm').fill('block-2');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForSelector('#confirm-error');
    expect((await s.admin('GET', '/v1/devices/block-1')).status).toBe(200);
    await checkPage('confirm-delete');
    await page.getByLabel('Type the device id to confirm').fill('block-1');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL('**/console/devices');
    expect(await page.locator('.flash.ok').textContent()).toContain('block-1 was deleted.');
    expect((await s.admin('GET', '/v1/devices/block-1')).status).toBe(404);
    const audit = (await s.admin('GET', '/v1/audit?deviceId=block-1')).body.entries.map((e: { action: string }) => e.action);
    expect(audit.filter((a: string) => a.startsWith('device.'))).toEqual(['device.delete', 'device.update', 'device.update', 'device.create']);
    expect(audit).toContain('auth.failure'); // the refused connect while blocked
    await tab.close();
  });

  it('a config saved meanwhile by someone else is a conflict that keeps the edit', async () => {
    await s.device('cfg-1');
    await freshTab();
    const other = await openTab(browser);
    await signIn(other.page, s.url);
    await devicePage('cfg-1');
    await other.page.goto(`${s.url}/console/devices/cfg-1`);
    await other.page.getByLabel('Config (JSON object)').fill('{"interval": 10}');
    await other.page.getByRole('button', { name: 'Save config' }).click();
    await other.page.waitForSelector('.flash.ok');
    await other.close();
    await page.getByLabel('Config (JSON object)').fill('{"interval": 99}');
    await page.getByRole('button', { name: 'Save config' }).click();
    await page.waitForSelector('.flash.error[role="alert"]');
    expect(await page.locator('.flash.error[role="alert"]').textContent()).toContain('it changed since you loaded version 0');
    expect(await page.getByLabel('Config (JSON object)').inputValue()).toBe('{"interval": 99}');
    await checkPage('device-config-conflict');
    await page.getByRole('button', { name: 'Save config' }).click(); // saving again replaces it, knowingly
    await page.waitForSelector('.flash.ok');
    expect((await s.admin('GET', '/v1/devices/cfg-1')).body.config.version).toBe(2);
    await page.getByLabel('Config (JSON object)').fill('{not json');
    await page.getByRole('button', { name: 'Save config' }).click();
    await page.waitForSelector('#config-error');
    expect(await page.locator('#config-error').textContent()).toContain('not valid JSON');
    await tab.close();
  });

  it('a command to a simulated lock shows its reply; an offline device and a timeout each say so', async () => {
    const keys = await s.device('lock-1', { model: 'lock' });
    const lock = new Lock({ seed: 1, lock: 'locked' });
    const client = await DeviceClient.connect({ deviceId: 'lock-1', brokerUrl: s.mqttUrl, privateKey: keys.privateKey });
    closers.push(() => client.close());
    for (const name of ['lock', 'unlock', 'dance']) { // the model answers dance with unknown_command
      await client.onCommand(name, (params) => {
        const { reply } = lock.command(name, params);
        if (!reply.ok) throw new CommandError(reply.error);
        return reply.result;
      });
    }
    await client.onCommand('slow', () => new Promise(() => {})); // never answers
    await client.publishTelemetry({ battery: 97 });
    await s.device('gone-1');
    await freshTab();
    await devicePage('lock-1');
    await page.getByLabel('Command', { exact: true }).fill('unlock');
    await page.getByRole('button', { name: 'Send command' }).click();
    await page.waitForSelector('#command-result .result');
    const result = page.locator('#command-result');
    expect(await result.textContent()).toContain('Reply from lock-1: ok');
    expect(await result.textContent()).toContain('"lock": "unlocked"');
    expect(new URL(page.url()).pathname).toBe('/console/devices/lock-1'); // sent without leaving the page

    // live telemetry, with its pause
    await client.publishTelemetry({ battery: 96 });
    await page.waitForSelector('#telemetry tbody tr');
    expect(await page.locator('#telemetry tbody tr').first().textContent()).toContain('"battery":96');
    await page.getByRole('button', { name: 'Pause telemetry' }).click();
    await client.publishTelemetry({ battery: 95 });
    await page.waitForFunction(() => /1 new message not shown/.test(document.querySelector('#telemetry-note')?.textContent ?? ''), null, { timeout: 10_000 });
    expect(await page.locator('#telemetry tbody tr').count()).toBe(1);
    // a second client under its id with an expired token: refused, the live session untouched
    await expect(s.connect(keys, { mintedAt: Date.now() - 3_600_000, ttlSeconds: 60 })).rejects.toThrow();
    await page.waitForFunction(() => /token expired/.test(document.querySelector('[data-refusal-for="lock-1"]')?.textContent ?? ''), null, { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector('[data-status-for="lock-1"]')?.textContent === 'Connected', null, { timeout: 10_000 });
    await checkPage('device');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'device-top', false); // the first screen, for the README (docs/console-device.png)

    await page.getByLabel('Command', { exact: true }).fill('slow');
    await page.getByLabel('Timeout (ms)').fill('500');
    await page.getByRole('button', { name: 'Send command' }).click();
    await page.waitForFunction(() => /No reply from lock-1 within 500 ms/.test(document.querySelector('#command-result')?.textContent ?? ''), null, { timeout: 10_000 });
    await page.getByLabel('Command', { exact: true }).fill('dance');
    await page.getByRole('button', { name: 'Send command' }).click();
    await page.waitForFunction(() => /lock-1 answered with an error/.test(document.querySelector('#command-result')?.textContent ?? ''), null, { timeout: 10_000 });

    await devicePage('gone-1');
    await page.getByLabel('Command', { exact: true }).fill('unlock');
    await page.getByRole('button', { name: 'Send command' }).click();
    await page.waitForFunction(() => /gone-1 is offline: it has no live MQTT session/.test(document.querySelector('#command-result')?.textContent ?? ''), null, { timeout: 10_000 });
    expect(tab.problems).toEqual([]);
    await tab.close();
  });

  it('an enrollment token is created, shown once, used by a device, and deleted', async () => {
    await freshTab();
    await page.getByRole('link', { name: 'Enrollment tokens' }).click();
    await page.getByLabel('Uses').fill('2');
    await page.getByLabel(/^Device id pattern/).fill('enr-[0-9]+');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.waitForSelector('.flash.ok');
    const token = await page.getByLabel('Copy it now: it is not shown again').inputValue();
    expect(token).toMatch(/^lket\./);
    await checkPage('enrollment-tokens');
    const pair = generateDeviceKeyPair();
    const enrolled = await enroll({ provisioningUrl: s.url, enrollmentToken: token, deviceId: 'enr-7', privateKey: pair.privateKey });
    expect(enrolled.id).toBe('enr-7');
    await page.reload();
    expect(await page.content()).not.toContain(token); // shown once only
    const row = page.locator('table.list tbody tr').first();
    expect(await row.textContent()).toContain('1 of 2');
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByLabel('Id prefix').fill('enr-');
    await page.getByRole('button', { name: 'Apply' }).click();
    expect(await page.locator('table.list tbody th a').allTextContents()).toEqual(['enr-7']);
    await page.getByRole('link', { name: 'Enrollment tokens' }).click();
    await page.getByRole('button', { name: /^Delete token / }).click();
    await page.waitForSelector('.flash.ok');
    expect(await page.locator('table.list tbody').textContent()).toContain('No enrollment tokens.');
    await tab.close();
  });

  it('refuses a change without the session’s CSRF token or from another site, and renders hostile metadata as text', async () => {
    await s.device('xss-1', { [XSS]: XSS, note: '<script>alert(1)</script>' });
    await freshTab();
    await devicePage('xss-1');
    expect(await page.getByText(XSS).count()).toBe(2); // key and value, as text
    expect(await page.locator('main img').count()).toBe(0);
    await checkPage('device-hostile-metadata');

    // a stale or forged form token
    await page.getByRole('button', { name: 'Block' }).click();
    await page.waitForURL(/\/xss-1\/block/);
    await page.evaluate(() => {
      document.querySelector('main form input[name="_csrf"]').value = 'forged-forged-forged-forged-forged-forged-f';
    });
    await page.getByRole('button', { name: 'Block' }).click();
    await page.waitForLoadState('domcontentloaded');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Refused: security token missing');
    expect(tab.httpErrors).toEqual([expect.stringContaining('status of 403')]);
    await checkPage('csrf-refused');

    // another site (another port of this host: same-site, not same-origin) posting with the real token: refused
    const csrf = await (async () => {
      await page.goto(`${s.url}/console/devices/xss-1/block`);
      return page.locator('input[name="_csrf"]').first().inputValue();
    })();
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><form method="post" action="${s.url}/console/devices/xss-1/block"><input type="hidden" name="_csrf" value="${csrf}"><button>Win a prize</button></form>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => evil.close(r)));
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    await page.getByRole('button', { name: 'Win a prize' }).click();
    await page.waitForURL(`${s.url}/**`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Refused: cross-site request');
    expect((await s.admin('GET', '/v1/devices/xss-1')).body.blocked).toBe(false);
    expect(tab.dialogs).toEqual([]);
    await tab.close();
  });
});
