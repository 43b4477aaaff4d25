import { html, type SafeHtml } from '../html.ts';
import { page, type ShellAssets } from '../layout.ts';

/** The sign-in form: the admin token is exchanged for a session cookie. */
export function loginPage(o: { next: string; error: string | null }, assets: ShellAssets): SafeHtml {
  const invalid = o.error !== null;
  return page(
    {
      title: 'Sign in',
      section: null,
      session: null,
      body: html`<section class="narrow">
  <h1>Sign in</h1>
  <p>Use the admin token of this latchkey (<code>LATCHKEY_ADMIN_TOKEN</code>, or the file <code>admin-token</code> in its data directory).</p>
  <form method="post" action="/console/login" class="stack">
    <input type="hidden" name="next" value="${o.next}">
    <label for="token">Admin token</label>
    <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required
      ${invalid ? html`aria-invalid="true" aria-describedby="token-error"` : null}>
    ${invalid ? html`<p id="token-error" class="field-error">${o.error}</p>` : null}
    <button type="submit">Sign in</button>
  </form>
</section>`,
    },
    assets,
  );
}
