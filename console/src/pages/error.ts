import { html, type SafeHtml } from '../html.ts';
import { page, type ShellAssets } from '../layout.ts';
import type { ConsoleSession } from '../session.ts';

/**
 * A refusal or failure on a console route: an HTML page with the status and what to do.
 * The console's counterpart of the API's problem+json (docs/console.md §Errors).
 */
export class ConsoleError extends Error {
  override readonly name = 'ConsoleError';
  readonly status: number;
  readonly title: string;
  readonly link: { href: string; text: string } | null;
  constructor(status: number, title: string, message: string, link: { href: string; text: string } | null = null) {
    super(message);
    this.status = status;
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
<p class="muted">HTTP ${e.status}</p>
</section>`,
    },
    assets,
  );
}
