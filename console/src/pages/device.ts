import { deviceTopics } from '@latchkey/device-sdk/protocol';
import type { DeviceDetail } from '../data.ts';
import { badge, devicePath, deviceState, lastRefusal, pretty, time } from '../format.ts';
import { html, type SafeHtml } from '../html.ts';
import { csrfField, page, type ShellAssets } from '../layout.ts';
import type { ConsoleSession, Flash } from '../session.ts';
import { auditTable } from './audit.ts';

/** What the operator typed, kept when a change is refused, with the reason. */
export interface DeviceForms {
  key?: { publicKey: string; expiresAt: string; error: string };
  config?: { text: string; ifVersion: number; error: string | null; conflict: boolean };
  command?: { name: string; params: string; timeoutMs: string; result: SafeHtml };
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** A field's error text, linked to the field for assistive technology. */
function fieldError(id: string, error: string | null | undefined): SafeHtml | null {
  return error ? html`<p id="${id}-error" class="field-error">${error}</p>` : null;
}
const invalid = (id: string, error: string | null | undefined) => (error ? html` aria-invalid="true" aria-describedby="${id}-error"` : null);

/** One device: status and last refusal, keys, config, state, commands, live telemetry, audit. */
export function devicePage(
  d: DeviceDetail,
  o: { now: number; forms: DeviceForms; session: ConsoleSession; flash: Flash | null },
  assets: ShellAssets,
): SafeHtml {
  const dev = d.device;
  const id = dev.id;
  const st = dev.status;
  const csrf = csrfField(o.session);
  const configVersion = d.config?.version ?? 0;
  const cf = o.forms.config;
  const kf = o.forms.key;
  const cmd = o.forms.command;
  return page(
    {
      title: id,
      section: 'devices',
      session: o.session,
      flash: o.flash,
      events: `/console/events?deviceId=${encodeURIComponent(id)}&events=status,change,telemetry`,
      body: html`<p class="crumbs"><a href="/console/devices">Devices</a></p>
<h1 class="mono">${id}</h1>
<p class="deleted-note" hidden data-deleted-for="${id}" role="alert">This device was deleted.</p>
<section aria-labelledby="overview-h">
<h2 id="overview-h">Status</h2>
<dl class="facts">
  <dt>Status</dt><dd>${badge(deviceState({ blocked: dev.blocked, connected: st.connected }), id)}</dd>
  <dt>Last connected</dt><dd data-field="lastConnectedAt">${time(st.lastConnectedAt, o.now)}</dd>
  <dt>Last disconnected</dt><dd data-field="lastDisconnectedAt">${time(st.lastDisconnectedAt, o.now)}</dd>
  <dt>Last seen</dt><dd data-seen-for="${id}">${time(st.lastSeenAt, o.now)}</dd>
  <dt>Last refusal</dt><dd data-refusal-for="${id}">${lastRefusal(st.lastError, o.now)}</dd>
  <dt>Registered</dt><dd>${time(dev.createdAt, o.now)}</dd>
</dl>
<div class="actions">
  ${dev.blocked
    ? html`<form method="post" action="${devicePath(id, '/unblock')}">${csrf}<button type="submit">Unblock</button></form>`
    : html`<form method="get" action="${devicePath(id, '/block')}"><button type="submit" class="warn">Block</button></form>`}
  <form method="get" action="${devicePath(id, '/delete')}"><button type="submit" class="danger">Delete</button></form>
</div>
</section>

<section aria-labelledby="metadata-h">
<h2 id="metadata-h">Metadata</h2>
${Object.keys(dev.metadata).length === 0
  ? html`<p class="muted">No metadata.</p>`
  : html`<table><caption class="visually-hidden">Metadata</caption><thead><tr><th scope="col">Key</th><th scope="col">Value</th></tr></thead><tbody>${Object.entries(
      dev.metadata,
    ).map(([k, v]) => html`<tr><th scope="row">${k}</th><td class="mono">${typeof v === 'string' ? v : JSON.stringify(v)}</td></tr>`)}</tbody></table>`}
</section>

<section aria-labelledby="keys-h">
<h2 id="keys-h">Keys</h2>
<table>
  <caption class="visually-hidden">Keys of ${id}</caption>
  <thead><tr><th scope="col">Key id</th><th scope="col">SHA-256 fingerprint</th><th scope="col">Added</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
  <tbody>${dev.credentials.map(
    (c) => html`<tr>
    <th scope="row" class="mono">${c.kid}</th>
    <td><code class="fingerprint" data-fingerprint-for="${c.kid}">${c.fingerprint}</code> <button type="button" class="small" data-copy="${c.fingerprint}" aria-label="Copy fingerprint of ${c.kid}">Copy</button></td>
    <td>${time(c.createdAt, o.now)}</td>
    <td data-last-used-for="${c.kid}">${c.lastUsedAt === null ? html`<span class="muted">never</span>` : time(c.lastUsedAt, o.now)}</td>
    <td>${c.expiresAt === null ? html`<span class="muted">never</span>` : html`${time(c.expiresAt, o.now)}${c.expiresAt <= o.now ? html` <span class="badge blocked">Expired</span>` : null}`}</td>
    <td><form method="post" action="${devicePath(id, `/credentials/${encodeURIComponent(c.kid)}/remove`)}">${csrf}<button type="submit" class="small" aria-label="Remove key ${c.kid}">Remove</button></form></td>
  </tr>`,
  )}</tbody>
</table>
<form method="post" action="${devicePath(id, '/credentials')}" class="stack">
  ${csrf}
  <h3>Add a key</h3>
  <label for="publicKey">Public key (SPKI or certificate PEM, or JWK)</label>
  <textarea id="publicKey" name="publicKey" rows="5" class="mono" required spellcheck="false"${invalid('publicKey', kf?.error)}>${kf?.publicKey ?? ''}</textarea>
  ${fieldError('publicKey', kf?.error)}
  <label for="expiresAt">Expires (optional, RFC 3339, e.g. 2027-01-01T00:00:00Z)</label>
  <input id="expiresAt" name="expiresAt" value="${kf?.expiresAt ?? ''}" spellcheck="false">
  <button type="submit">Add key</button>
</form>
</section>

<section aria-labelledby="config-h">
<h2 id="config-h">Config</h2>
<p>Version <strong>${configVersion}</strong>${d.config !== null ? html`, saved ${time(d.config.updatedAt, o.now)}` : null}. A saved config is delivered retained on <code>${deviceTopics(id).config}</code>.</p>
${cf?.conflict
  ? html`<div class="flash error" role="alert"><p>The config is at version ${configVersion}: it changed since you loaded version ${cf.ifVersion}. Your edit is kept below; compare it with the current config and save again to replace it.</p>
    ${d.config !== null ? html`<pre class="mono">${pretty(d.config.config)}</pre>` : null}</div>`
  : null}
<form method="post" action="${devicePath(id, '/config')}" class="stack">
  ${csrf}
  <input type="hidden" name="ifVersion" value="${cf?.conflict ? configVersion : (cf?.ifVersion ?? configVersion)}">
  <label for="config">Config (JSON object)</label>
  <textarea id="config" name="config" rows="8" class="mono" spellcheck="false"${invalid('config', cf?.error)}>${cf?.text ?? pretty(d.config?.config ?? {})}</textarea>
  ${fieldError('config', cf?.error)}
  <button type="submit">Save config</button>
</form>
</section>

<section aria-labelledby="state-h">
<h2 id="state-h">Last reported state</h2>
${d.state === null ? html`<p class="muted">The device has not reported a state.</p>` : html`<p>Reported ${time(d.state.reportedAt, o.now)}</p><pre class="mono">${pretty(d.state.state)}</pre>`}
</section>

<section aria-labelledby="command-h">
<h2 id="command-h">Send a command</h2>
<form method="post" action="${devicePath(id, '/commands')}" class="stack" data-fragment="command-result">
  ${csrf}
  <label for="command-name">Command</label>
  <input id="command-name" name="name" required value="${cmd?.name ?? ''}" spellcheck="false">
  <label for="command-params">Parameters (JSON object, optional)</label>
  <textarea id="command-params" name="params" rows="3" class="mono" spellcheck="false">${cmd?.params ?? ''}</textarea>
  <label for="command-timeout">Timeout (ms)</label>
  <input id="command-timeout" name="timeoutMs" inputmode="numeric" value="${cmd?.timeoutMs ?? String(DEFAULT_COMMAND_TIMEOUT_MS)}">
  <button type="submit">Send command</button>
</form>
<div id="command-result" role="status" aria-live="polite">${cmd?.result ?? null}</div>
</section>

<section aria-labelledby="telemetry-h">
<h2 id="telemetry-h">Live telemetry</h2>
<p><button type="button" id="telemetry-toggle" aria-pressed="false" aria-controls="telemetry">Pause telemetry</button> <span id="telemetry-note" class="muted">Messages appear here as the device publishes them (the last 100).</span></p>
<table id="telemetry">
  <caption class="visually-hidden">Live telemetry of ${id}</caption>
  <thead><tr><th scope="col">Received</th><th scope="col">Topic</th><th scope="col">Payload</th></tr></thead>
  <tbody></tbody>
</table>
</section>

<section aria-labelledby="audit-h">
<h2 id="audit-h">Audit</h2>
${auditTable(d.audit, o.now, `Latest audit entries of ${id}`)}
<p><a href="/console/audit?deviceId=${encodeURIComponent(id)}">All audit entries of ${id}</a></p>
</section>`,
    },
    assets,
  );
}

/** The command result panel (also sent alone to the page's script). */
export function commandResult(
  id: string,
  r: { kind: 'reply'; ok: boolean; result?: unknown; error?: string } | { kind: 'refused'; code: string; detail: string; timeoutMs?: number },
): SafeHtml {
  if (r.kind === 'reply') {
    return r.ok
      ? html`<div class="result ok"><p><strong>Reply from ${id}: ok</strong></p><pre class="mono">${pretty(r.result ?? null)}</pre></div>`
      : html`<div class="result error"><p><strong>${id} answered with an error:</strong> ${r.error ?? 'error'}</p></div>`;
  }
  const text =
    r.code === 'device_offline'
      ? `${id} is offline: it has no live MQTT session, so the command was not sent.`
      : r.code === 'command_timeout'
        ? `No reply from ${id} within ${r.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS} ms. The command was delivered and may still run on the device.`
        : `The command was refused: ${r.detail}`;
  return html`<div class="result error"><p><strong>${text}</strong></p></div>`;
}

/** The confirmation before blocking or deleting. */
/**
 * Removing a key that verified a connect recently (the API's `credential_in_use`): what that means,
 * and a second, explicit "Remove anyway" (`force`).
 */
export function keyInUsePage(o: { id: string; kid: string; lastConnectAt: number | null; now: number; session: ConsoleSession }, assets: ShellAssets): SafeHtml {
  return page(
    {
      title: `Remove key ${o.kid} of ${o.id}`,
      section: 'devices',
      session: o.session,
      body: html`<section class="narrow">
<p class="crumbs"><a href="/console/devices">Devices</a> › <a href="${devicePath(o.id)}">${o.id}</a></p>
<h1>Key <span class="mono">${o.kid}</span> is in use</h1>
<p>It verified a connect ${o.lastConnectAt === null ? 'recently' : time(o.lastConnectAt, o.now)}. The device most likely still connects with it: removing it closes those sessions, and the device cannot connect again until it uses another of its keys. Check that the device has moved to its new key (its <strong>Last used</strong> time) first.</p>
<form method="post" action="${devicePath(o.id, `/credentials/${encodeURIComponent(o.kid)}/remove`)}" class="stack">
  ${csrfField(o.session)}
  <input type="hidden" name="force" value="true">
  <div class="actions"><button type="submit" class="danger">Remove anyway</button> <a href="${devicePath(o.id)}">Cancel</a></div>
</form>
</section>`,
    },
    assets,
  );
}

export function confirmPage(
  o: { id: string; action: 'block' | 'delete'; session: ConsoleSession; error: string | null },
  assets: ShellAssets,
): SafeHtml {
  const del = o.action === 'delete';
  return page(
    {
      title: `${del ? 'Delete' : 'Block'} ${o.id}`,
      section: 'devices',
      session: o.session,
      body: html`<section class="narrow">
<p class="crumbs"><a href="/console/devices">Devices</a> › <a href="${devicePath(o.id)}">${o.id}</a></p>
<h1>${del ? 'Delete' : 'Block'} <span class="mono">${o.id}</span>?</h1>
<p>${
        del
          ? 'Its keys, status, config and state are deleted and its live sessions close now. This cannot be undone: the device would have to be registered or enrolled again.'
          : 'Its live sessions close now and it cannot connect until you unblock it.'
      }</p>
<form method="post" action="${devicePath(o.id, `/${o.action}`)}" class="stack">
  ${csrfField(o.session)}
  ${del
    ? html`<label for="confirm">Type the device id to confirm</label>
      <input id="confirm" name="confirm" required autocomplete="off" spellcheck="false"${invalid('confirm', o.error)}>
      ${fieldError('confirm', o.error)}`
    : null}
  <div class="actions"><button type="submit" class="${del ? 'danger' : 'warn'}">${del ? 'Delete' : 'Block'}</button> <a href="${devicePath(o.id)}">Cancel</a></div>
</form>
</section>`,
    },
    assets,
  );
}
