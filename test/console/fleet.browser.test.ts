/**
 * Browser journeys over a fleet of 10,000 devices (seeded once by the batch API): sign-in,
 * paging and filters, a live badge flip, a rogue's refusal on the device page and in the health
 * chart, the audit log. Every page: axe 0 WCAG 2 A/AA violations, 0 CSP violations, a screenshot.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, expectNoCspViolations, launch, liveOpen, openTab, requireChromium, shot, type Tab } from './helpers/browser.ts';
import { ADMIN_TOKEN, newDeviceKeys, signIn, startConsoleStack, type ConsoleStack, type DeviceKeys } from './helpers/stack.ts';

/** Globals of the page, for functions that playwright runs in the browser (this project compiles without the DOM lib). */
declare const document: any, window: any;

const run = requireChromium('fleet.browser.test.ts');
const FLEET = 10_000;

describe.skipIf(!run)('console in Chromium: a fleet of 10,000', { timeout: 120_000 }, () => {
  let s: ConsoleStack;
  let browser: Browser;
  let tab: Tab;
  let page: Page;
  let live: DeviceKeys;

  beforeAll(async () => {
    [s, browser] = await Promise.all([startConsoleStack(), launch()]);
    await s.seed('dev-', FLEET);
    live = await s.device('live-1');
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  /** The checks every page gets: no script error, no CSP violation, no axe violation, a screenshot. */
  async function checkPage(name: string): Promise<void> {
    expect(tab.problems).toEqual([]);
    await expectNoCspViolations(page);
    expect(await axeViolations(page), name).toEqual([]);
    await shot(page, name);
  }

  it('sign in: a wrong token is refused, the right one signs in (HttpOnly, SameSite=Strict cookie), sign out ends it', async () => {
    tab = await openTab(browser);
    page = tab.page;
    await page.goto(`${s.url}/console/devices`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await checkPage('login');
    await signIn(page, s.url, 'wrong-token-wrong-token-wrong');
    await expect.poll(() => page.getByText('That is not the admin token.').isVisible()).toBe(true);
    expect(await page.getByLabel('Admin token').getAttribute('aria-invalid')).toBe('true');
    expect(await tab.context.cookies()).toEqual([]);
    expect(tab.httpErrors).toEqual([expect.stringContaining('status of 401')]);
    await checkPage('login-refused');
    // keyboard only: the skip link comes first, then the home link and the token field; Enter submits
    await page.goto(`${s.url}/console/login`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('latchkey console');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('token');
    await page.keyboard.type(ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/console/devices');
    const [cookie] = await tab.context.cookies();
    expect(cookie).toMatchObject({ name: 'lk_session', httpOnly: true, sameSite: 'Strict', path: '/console', secure: false });
    expect(await page.evaluate(() => document.cookie)).toBe(''); // no script can read it
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/console/login');
    expect(await tab.context.cookies()).toEqual([]);
    await page.goBack(); // the devices page was no-store: back shows the sign-in again, not the data
    await page.waitForLoadState('domcontentloaded');
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await tab.close();
  });

  it('pages through 10,000 devices and filters them by status and id prefix', async () => {
    tab = await openTab(browser);
    page = tab.page;
    await signIn(page, s.url);
    const rows = page.locator('table.list tbody tr');
    const firstId = () => rows.first().locator('th a').textContent();
    expect(await rows.count()).toBe(50);
    expect(await firstId()).toBe('dev-00000');
    await expect.poll(() => page.locator('[data-connected-count]').textContent()).toBe('0');
    await checkPage('devices');
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.waitForURL(/after=dev-00049/);
    expect(await firstId()).toBe('dev-00050');
    await page.getByRole('link', { name: 'Next page' }).click();
    expect(await firstId()).toBe('dev-00100');
    await page.getByRole('link', { name: 'Previous page' }).click();
    expect(await firstId()).toBe('dev-00050');
    await page.getByRole('link', { name: 'Previous page' }).click();
    expect(await firstId()).toBe('dev-00000');
    expect(await page.getByRole('link', { name: 'Previous page' }).count()).toBe(0);

    await page.getByLabel('Id prefix').fill('dev-0999');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/q=dev-0999/);
    expect(await rows.locator('th a').allTextContents()).toEqual(Array.from({ length: 10 }, (_, i) => `dev-0999${i}`));
    expect(await page.getByRole('link', { name: 'Next page' }).count()).toBe(0);

    // the last page of the whole fleet, then the filters
    await page.goto(`${s.url}/console/devices?before=live-1`);
    expect(await rows.last().locator('th a').textContent()).toBe('dev-09999');
    await s.admin('PATCH', '/v1/devices/dev-04242', { blocked: true });
    await page.goto(`${s.url}/console/devices`);
    await page.getByLabel('Status').selectOption('blocked');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/status=blocked/);
    expect(await rows.locator('th a').allTextContents()).toEqual(['dev-04242']);
    expect(await rows.first().getByText('Blocked').isVisible()).toBe(true);
    await page.getByLabel('Status').selectOption('offline');
    await page.getByRole('button', { name: 'Apply' }).click();
    expect(await firstId()).toBe('dev-00000');
    await checkPage('devices-filtered');
    await tab.close();
  });

  it('a device connecting flips its badge and the connected count live', async () => {
    tab = await openTab(browser);
    page = tab.page;
    await signIn(page, s.url);
    await page.goto(`${s.url}/console/devices?q=live-`);
    await liveOpen(page);
    const badge = page.locator('[data-status-for="live-1"]');
    expect(await badge.textContent()).toBe('Offline');
    const client = await s.connect(live);
    const connectedAt = Date.now();
    await page.waitForFunction(() => document.querySelector('[data-status-for="live-1"]')?.textContent === 'Connected', null, { timeout: 10_000 });
    console.log(`status flip visible ${Date.now() - connectedAt} ms after CONNACK (broker status flush 1 s + push)`);
    expect(await badge.getAttribute('class')).toBe('badge connected');
    await expect.poll(() => page.locator('[data-connected-count]').textContent()).toBe('1');
    await checkPage('devices-live');
    await client.endAsync();
    await page.waitForFunction(() => document.querySelector('[data-status-for="live-1"]')?.textContent === 'Offline', null, { timeout: 10_000 });
    // pausing stops the stream; resuming reopens it
    await page.getByRole('button', { name: 'Pause live updates' }).click();
    expect(await page.getByRole('button', { name: 'Resume live updates' }).getAttribute('aria-pressed')).toBe('true');
    await page.getByRole('button', { name: 'Resume live updates' }).click();
    await liveOpen(page);
    await tab.close();
  });

  it('a rogue with an expired token shows "token expired" on that device, live, and in the health chart', async () => {
    tab = await openTab(browser);
    page = tab.page;
    await signIn(page, s.url);
    await page.goto(`${s.url}/console/devices/live-1`);
    await liveOpen(page);
    await expect(s.connect(live, { mintedAt: Date.now() - 3_600_000, ttlSeconds: 60 })).rejects.toThrow();
    const refusal = page.locator('[data-refusal-for="live-1"]');
    await page.waitForFunction(() => document.querySelector('[data-refusal-for="live-1"]')?.textContent?.includes('token expired'), null, { timeout: 10_000 });
    expect(await refusal.locator('code').textContent()).toBe('token_expired');
    await page.reload(); // and it is stored, not only pushed
    expect(await refusal.textContent()).toContain('token expired');

    await page.getByRole('link', { name: 'Fleet health' }).click();
    await page.waitForURL('**/console/health');
    const figure = page.locator('figure.chart');
    expect(await figure.locator('svg[role="img"] title').first().textContent()).toContain('token expired');
    expect(await figure.locator('.legend').textContent()).toContain('token expired');
    const table = page.getByRole('table', { name: /Refused connects by minute and reason/ });
    expect(await table.locator('tbody').textContent()).toContain('token_expired');
    await liveOpen(page);
    // a second refusal while the page is open: the chart section refreshes itself. Another reason
    // (a stranger's key), because a repeat of the same refusal from the same address is only counted,
    // and written as a summary when its minute ends (docs/operations.md §Retention)
    await expect(s.connect(newDeviceKeys('live-1'))).rejects.toThrow();
    await page.waitForFunction(() => /\b2 refused connects\b/.test(document.querySelector('[data-failures-total]')?.textContent ?? ''), null, { timeout: 10_000 });
    await checkPage('health');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL('**/console/audit');
    const newest = page.locator('table.list tbody tr');
    expect(await newest.nth(0).textContent()).toContain('signature does not match any registered key');
    expect(await newest.nth(1).textContent()).toContain('token expired');
    await checkPage('audit');
    await tab.close();
  });
});
