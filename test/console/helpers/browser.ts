/**
 * A real Chromium for the console's browser tests (Debian's /usr/bin/chromium, driven by
 * playwright-core): one browser per test file, a fresh context per journey. Without chromium the
 * tests skip with one line — except under CI=true, where its absence fails the run.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

/** Globals of the page, for functions that playwright runs in the browser (this project compiles without the DOM lib). */
declare const document: any, window: any;

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SHOTS = 'test-results/console';

/** Call once at the top of a browser test file: decides skip vs fail. */
export function requireChromium(file: string): boolean {
  if (HAS_CHROMIUM) return true;
  if (process.env.CI === 'true') throw new Error(`${file}: chromium is missing at ${CHROMIUM} (CI=true: apt-get install chromium)`);
  console.warn(`${file}: browser tests SKIPPED: no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  return false;
}

/** Headless, no sandbox (root), and no background networking: this machine's network is closed. */
export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-extensions',
      '--mute-audio',
    ],
  });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** console errors, page errors and CSP violations seen so far (must stay empty) */
  problems: string[];
  /** documents and resources answered with an HTTP error (a refused sign-in is one): asserted where expected */
  httpErrors: string[];
  /** window.alert / dialogs opened (an XSS would open one) */
  dialogs: string[];
  close(): Promise<void>;
}

/** A fresh context and page, collecting everything that would mean a CSP violation or a script error. */
export async function openTab(browser: Browser): Promise<Tab> {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
    reducedMotion: 'reduce',
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const page = await context.newPage();
  const problems: string[] = [];
  const dialogs: string[] = [];
  const httpErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (/^Failed to load resource: the server responded with a status of \d+/.test(m.text())) httpErrors.push(m.text());
    else problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  // every page reports CSP violations into a list the test reads (securitypolicyviolation events)
  await context.addInitScript(() => {
    (window as unknown as { __csp: string[] }).__csp = [];
    document.addEventListener('securitypolicyviolation', (e: { violatedDirective: string; blockedURI: string }) =>
      (window as unknown as { __csp: string[] }).__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  return { context, page, problems, httpErrors, dialogs, close: () => context.close() };
}

/** CSP violations reported on the current page (and fails on any). */
export async function expectNoCspViolations(page: Page): Promise<void> {
  const v = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
  expect(v).toEqual([]);
}

/** A full-page screenshot for people to look at (not a pixel-diff gate); times masked. */
export async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage, animations: 'disabled', caret: 'hide' });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's WCAG 2 A/AA violations on the current page (evaluated in the page: our CSP blocks injected tags). */
export async function axeViolations(page: Page): Promise<Array<{ id: string; help: string; nodes: string[] }>> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: unknown, o: object): Promise<{ violations: Array<{ id: string; help: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
}

/** Waits until the page's live stream has said hello (console.js sets html[data-live=open]). */
export async function liveOpen(page: Page): Promise<void> {
  await page.waitForSelector('html[data-live="open"]', { timeout: 10_000 });
}
