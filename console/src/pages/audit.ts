import type { AuditEntry } from '@latchkey/provisioning/registry';
import { principalLink, time } from '../format.ts';
import { html, query, type SafeHtml } from '../html.ts';
import { page, type ShellAssets } from '../layout.ts';
import { refusalWords } from '../refusal-words.ts';
import type { ConsoleSession } from '../session.ts';

export const AUDIT_PER_PAGE = 50;

/** A target as a link when it is a device (service accounts and enrollment tokens stay text). */
function target(t: string | null, action: string): SafeHtml | string {
  if (t === null) return '—';
  return action.startsWith('enrollment_token.') ? t : principalLink(t);
}

/** The detail of an entry; a refusal gets its reason in words first, a summary of repeats its count. */
function detail(e: AuditEntry): SafeHtml {
  const reason = e.action === 'auth.failure' && typeof e.detail.reason === 'string' ? e.detail.reason : null;
  const repeated = reason !== null && typeof e.detail.repeated === 'number' ? e.detail.repeated : null;
  const words =
    reason === null ? null : repeated !== null ? html`<strong>${repeated} more refused (last: ${refusalWords(reason)})</strong> ` : html`<strong>${refusalWords(reason)}</strong> `;
  return html`${words}<code>${JSON.stringify(e.detail)}</code>`;
}

export function auditTable(entries: AuditEntry[], now: number, caption: string): SafeHtml {
  return html`<table class="list">
  <caption>${caption}</caption>
  <thead><tr><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Detail</th></tr></thead>
  <tbody>${
    entries.length === 0
      ? html`<tr><td colspan="5">No entries.</td></tr>`
      : entries.map((e) => html`<tr><td>${time(e.at, now)}</td><td>${e.actor}</td><td>${e.action}</td><td>${target(e.target, e.action)}</td><td>${detail(e)}</td></tr>`)
  }</tbody>
</table>`;
}

/** The audit log, newest first, filtered by device id, paged by sequence number. */
export function auditPage(
  o: { entries: AuditEntry[]; deviceId: string; error: string | null; next: number | null; now: number; session: ConsoleSession },
  assets: ShellAssets,
): SafeHtml {
  return page(
    {
      title: 'Audit log',
      section: 'audit',
      session: o.session,
      body: html`<h1>Audit log</h1>
<form method="get" action="/console/audit" class="filters" role="search">
  <div><label for="deviceId">Device id (or svc:name)</label>
  <input id="deviceId" name="deviceId" value="${o.deviceId}" spellcheck="false"${o.error ? html` aria-invalid="true" aria-describedby="deviceId-error"` : null}></div>
  <button type="submit">Filter</button>
  ${o.error ? html`<p id="deviceId-error" class="field-error">${o.error}</p>` : null}
</form>
${auditTable(o.entries, o.now, o.deviceId === '' ? 'Every entry, newest first' : `Entries of ${o.deviceId}, newest first`)}
<nav class="pager" aria-label="Pages">
  <a href="/console/audit${query({ deviceId: o.deviceId })}">Newest</a>
  ${o.next !== null ? html`<a rel="next" href="/console/audit${query({ deviceId: o.deviceId, before: o.next })}">Older entries</a>` : html`<span class="muted">Older entries</span>`}
</nav>`,
    },
    assets,
  );
}
