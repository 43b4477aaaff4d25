import type { DevicePage, DeviceStatusFilter } from '@latchkey/provisioning/registry';
import { badge, devicePath, deviceState, lastRefusal, time } from '../format.ts';
import { html, query, type SafeHtml } from '../html.ts';
import { page, type ShellAssets } from '../layout.ts';
import type { ConsoleSession, Flash } from '../session.ts';

export const DEVICES_PER_PAGE = 50;

export interface DevicesView {
  status: DeviceStatusFilter | null;
  prefix: string;
  page: DevicePage;
  total: number;
  connected: number;
  now: number;
}

const FILTER_TEXT: Record<DeviceStatusFilter | '', string> = {
  '': 'All devices',
  connected: 'Connected',
  offline: 'Offline (not blocked)',
  blocked: 'Blocked',
  error: 'With a recent refusal',
};

/** The device list: server-side filters and keyset pages of 50, statuses kept live. */
export function devicesPage(v: DevicesView, session: ConsoleSession, flash: Flash | null, assets: ShellAssets): SafeHtml {
  const items = v.page.items;
  const link = (k: 'after' | 'before', id: string) => `/console/devices${query({ status: v.status, q: v.prefix, [k]: id })}`;
  const ids = items.map((d) => `deviceId=${encodeURIComponent(d.id)}`).join('&');
  const caption = `${FILTER_TEXT[v.status ?? '']}${v.prefix !== '' ? `, id starting with “${v.prefix}”` : ''}`;
  return page(
    {
      title: 'Devices',
      section: 'devices',
      session,
      flash,
      events: `/console/events?events=status,fleet${ids === '' ? '' : `&${ids}`}`,
      body: html`<h1>Devices</h1>
<p class="summary" aria-live="polite"><span data-connected-count>${v.connected.toLocaleString('en-US')}</span> of ${v.total.toLocaleString('en-US')} devices connected</p>
<form method="get" action="/console/devices" class="filters" role="search">
  <div><label for="status">Status</label>
  <select id="status" name="status">${(Object.keys(FILTER_TEXT) as Array<DeviceStatusFilter | ''>).map(
    (k) => html`<option value="${k}"${(v.status ?? '') === k ? html` selected` : null}>${FILTER_TEXT[k]}</option>`,
  )}</select></div>
  <div><label for="q">Id prefix</label>
  <input id="q" name="q" value="${v.prefix}" maxlength="64" spellcheck="false" autocapitalize="off"></div>
  <button type="submit">Apply</button>
</form>
<table class="list">
  <caption>${caption}</caption>
  <thead><tr><th scope="col">Device</th><th scope="col">Status</th><th scope="col">Last seen</th><th scope="col">Last refusal</th><th scope="col">Keys</th></tr></thead>
  <tbody>${
    items.length === 0
      ? html`<tr><td colspan="5">No devices match.</td></tr>`
      : items.map(
          (d) => html`<tr>
    <th scope="row"><a href="${devicePath(d.id)}">${d.id}</a></th>
    <td>${badge(deviceState({ blocked: d.blocked, connected: d.status.connected }), d.id)}</td>
    <td data-seen-for="${d.id}">${time(d.status.lastSeenAt, v.now)}</td>
    <td data-refusal-for="${d.id}">${lastRefusal(d.status.lastError, v.now)}</td>
    <td>${d.credentials.length}</td>
  </tr>`,
        )
  }</tbody>
</table>
<nav class="pager" aria-label="Pages">
  ${v.page.prev !== null ? html`<a rel="prev" href="${link('before', v.page.prev)}">Previous page</a>` : html`<span class="muted">Previous page</span>`}
  ${v.page.next !== null ? html`<a rel="next" href="${link('after', v.page.next)}">Next page</a>` : html`<span class="muted">Next page</span>`}
</nav>`,
    },
    assets,
  );
}
