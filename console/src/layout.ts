import { html, type Renderable, type SafeHtml } from './html.ts';
import type { ConsoleSession, Flash } from './session.ts';

export type Section = 'devices' | 'enrollment-tokens' | 'audit' | 'health' | null;

export interface PageShell {
  title: string;
  section: Section;
  /** signed in: the nav and the sign-out form; null on the sign-in page */
  session: ConsoleSession | null;
  flash?: Flash | null;
  /** the page's live event stream (`/console/events?...`), when it updates itself */
  events?: string | null;
  body: Renderable;
}

export interface ShellAssets {
  js: string;
  css: string;
}

const NAV: Array<[Exclude<Section, null>, string, string]> = [
  ['devices', '/console/devices', 'Devices'],
  ['enrollment-tokens', '/console/enrollment-tokens', 'Enrollment tokens'],
  ['audit', '/console/audit', 'Audit log'],
  ['health', '/console/health', 'Fleet health'],
];

/** A hidden CSRF field: every form that changes something carries it. */
export function csrfField(session: ConsoleSession): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${session.csrf}">`;
}

function flashOf(flash: Flash): SafeHtml {
  return html`<div class="flash ${flash.kind}" role="${flash.kind === 'error' ? 'alert' : 'status'}">
    <p>${flash.text}</p>
    ${flash.secret !== undefined
      ? html`<p><label for="secret">Copy it now: it is not shown again</label></p>
        <p class="secret"><input id="secret" class="mono" readonly value="${flash.secret}" size="60">
        <button type="button" data-copy="${flash.secret}">Copy</button></p>`
      : null}
  </div>`;
}

/** The page around every console view: skip link, navigation, live-update pause, sign-out. */
export function page(p: PageShell, assets: ShellAssets): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${p.title} · latchkey console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assets.css}">
<script src="${assets.js}" defer></script>
</head>
<body${p.events ? html` data-events="${p.events}"` : null}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/console/devices">latchkey <span>console</span></a>
  ${p.session !== null
    ? html`<nav aria-label="Main"><ul>${NAV.map(
        ([key, href, text]) => html`<li><a href="${href}"${key === p.section ? html` aria-current="page"` : null}>${text}</a></li>`,
      )}</ul></nav>
      <div class="session">
        ${p.events ? html`<button type="button" id="live-toggle" aria-pressed="false">Pause live updates</button>` : null}
        <form method="post" action="/console/logout">${csrfField(p.session)}<button type="submit">Sign out</button></form>
      </div>`
    : null}
</header>
<main id="main" tabindex="-1">
${p.flash ? flashOf(p.flash) : null}
${p.body}
</main>
</body>
</html>
`;
}
