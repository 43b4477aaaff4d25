import type { EnrollmentTokenRecord, Page } from '@latchkey/provisioning/registry';
import { time } from '../format.ts';
import { html, query, type SafeHtml } from '../html.ts';
import { csrfField, page, type ShellAssets } from '../layout.ts';
import type { ConsoleSession, Flash } from '../session.ts';

export interface TokenForm {
  hours: string;
  uses: string;
  idPattern: string;
  metadata: string;
  /** which field was refused, and why */
  error: { field: 'hours' | 'uses' | 'idPattern' | 'metadata'; text: string } | null;
}

export const TOKENS_PER_PAGE = 50;

export const EMPTY_TOKEN_FORM: TokenForm = { hours: '24', uses: '1', idPattern: '', metadata: '', error: null };

/** Enrollment tokens: create (the token is shown once), list in creation order a page at a time, delete. */
export function enrollmentTokensPage(
  o: { tokens: Page<EnrollmentTokenRecord>; paged: boolean; form: TokenForm; now: number; session: ConsoleSession; flash: Flash | null },
  assets: ShellAssets,
): SafeHtml {
  const f = o.form;
  const csrf = csrfField(o.session);
  const err = (field: NonNullable<TokenForm['error']>['field']) => (f.error?.field === field ? f.error.text : null);
  const attrs = (field: NonNullable<TokenForm['error']>['field']) =>
    err(field) !== null ? html` aria-invalid="true" aria-describedby="${field}-error"` : null;
  const msg = (field: NonNullable<TokenForm['error']>['field']) => (err(field) !== null ? html`<p id="${field}-error" class="field-error">${err(field)}</p>` : null);
  return page(
    {
      title: 'Enrollment tokens',
      section: 'enrollment-tokens',
      session: o.session,
      flash: o.flash,
      body: html`<h1>Enrollment tokens</h1>
<p>A device enrolls itself with a token and a proof that it holds its new key (<code>POST /v1/enroll</code>, or <code>enroll()</code> in the SDK).</p>
<table class="list">
  <caption>Tokens (their secrets are never stored)</caption>
  <thead><tr><th scope="col">Token id</th><th scope="col">Uses left</th><th scope="col">Expires</th><th scope="col">Device id pattern</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>${
    o.tokens.items.length === 0
      ? html`<tr><td colspan="6">${o.paged ? 'No more enrollment tokens.' : 'No enrollment tokens.'}</td></tr>`
      : o.tokens.items.map(
          (t) => html`<tr>
    <th scope="row" class="mono">${t.tokenId}</th>
    <td>${t.usesLeft} of ${t.usesTotal}</td>
    <td>${time(t.expiresAt, o.now)}${t.expiresAt <= o.now ? html` <span class="badge blocked">Expired</span>` : null}</td>
    <td>${t.idPattern === null ? html`<span class="muted">any</span>` : html`<code>${t.idPattern}</code>`}</td>
    <td>${time(t.createdAt, o.now)}</td>
    <td><form method="post" action="/console/enrollment-tokens/${encodeURIComponent(t.tokenId)}/delete">${csrf}<button type="submit" class="small" aria-label="Delete token ${t.tokenId}">Delete</button></form></td>
  </tr>`,
        )
  }</tbody>
</table>
${o.paged || o.tokens.next !== null
  ? html`<nav class="pager" aria-label="Token pages">
  <a href="/console/enrollment-tokens">First tokens</a>
  ${o.tokens.next !== null ? html`<a rel="next" href="/console/enrollment-tokens${query({ after: o.tokens.next })}">Later tokens</a>` : html`<span class="muted">Later tokens</span>`}
</nav>`
  : null}
<form method="post" action="/console/enrollment-tokens" class="stack">
  ${csrf}
  <h2>Create a token</h2>
  <label for="hours">Valid for (hours)</label>
  <input id="hours" name="hours" inputmode="numeric" value="${f.hours}" required${attrs('hours')}>${msg('hours')}
  <label for="uses">Uses</label>
  <input id="uses" name="uses" inputmode="numeric" value="${f.uses}" required${attrs('uses')}>${msg('uses')}
  <label for="idPattern">Device id pattern (optional regular expression, e.g. thermo-[0-9]{4})</label>
  <input id="idPattern" name="idPattern" value="${f.idPattern}" spellcheck="false"${attrs('idPattern')}>${msg('idPattern')}
  <label for="metadata">Metadata for enrolled devices (JSON object, optional)</label>
  <textarea id="metadata" name="metadata" rows="3" class="mono" spellcheck="false"${attrs('metadata')}>${f.metadata}</textarea>${msg('metadata')}
  <button type="submit">Create token</button>
</form>`,
    },
    assets,
  );
}
