import { CodedError } from '@latchkey/device-sdk/protocol';
import { API_ERROR_STATUS, type ApiErrorCode } from '@latchkey/provisioning';
import { html, type SafeHtml } from '../html.ts';
import { page, type ShellAssets } from '../layout.ts';
import type { ConsoleSession } from '../session.ts';

/** The console's own refusals and their statuses (one table: a new code does not compile without one). */
export const CONSOLE_ERROR_STATUS = {
  /** signed out, idle or too old: sign in again */
  session_ended: 401,
  /** a change without this session's CSRF token */
  csrf_token_invalid: 403,
  /** a change that did not come from a page of this origin */
  cross_site_request: 403,
} as const satisfies Record<string, 401 | 403>;

export type ConsoleOwnErrorCode = keyof typeof CONSOLE_ERROR_STATUS;
/** The console's codes: its own, and the HTTP API's (docs/errors.md), which keep the API's statuses. */
export type ConsoleErrorCode = ConsoleOwnErrorCode | ApiErrorCode;

const statusOf = (code: ConsoleErrorCode): number =>
  Object.hasOwn(CONSOLE_ERROR_STATUS, code) ? CONSOLE_ERROR_STATUS[code as ConsoleOwnErrorCode] : API_ERROR_STATUS[code as ApiErrorCode];

/**
 * A refusal or failure on a console route: an HTML page with the status, the code and what to do
 * — the console's counterpart of the API's problem+json (docs/console.md §Security of every page).
 *
 * @example
 * ```ts
 * throw new ConsoleError('not_found', 'No such device', 'This is not a device id.', { href: '/console/devices', text: 'All devices' });
 * ```
 */
export class ConsoleError extends CodedError<ConsoleErrorCode> {
  override readonly name = 'ConsoleError';
  readonly status: number;
  readonly title: string;
  readonly link: { href: string; text: string } | null;
  constructor(code: ConsoleErrorCode, title: string, message: string, link: { href: string; text: string } | null = null) {
    super(code, message);
    this.status = statusOf(code);
    this.title = title;
    this.link = link;
  }
}

export function errorPage(e: ConsoleError, session: ConsoleSession | null, assets: ShellAssets): SafeHtml {
  return page(
    {
      title: e.title,
      section: null,
      session,
      body: html`<section class="narrow">
<h1>${e.title}</h1>
<p>${e.message}</p>
<p>${e.link !== null ? html`<a href="${e.link.href}">${e.link.text}</a>` : html`<a href="/console/devices">Back to the devices</a>`}</p>
<p class="muted">HTTP ${e.status} (<code>${e.code}</code>)</p>
</section>`,
    },
    assets,
  );
}
