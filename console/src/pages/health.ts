import type { HealthFigures } from '../data.ts';
import { principalLink, utc } from '../format.ts';
import { html, type SafeHtml } from '../html.ts';
import { page, type ShellAssets } from '../layout.ts';
import { refusalWords } from '../refusal-words.ts';
import type { ConsoleSession } from '../session.ts';

const MINUTE_MS = 60_000;
/** Series colours (console.css .s0 … .s7); the legend and the table carry the meaning in words. */
const SERIES = 8;
const W = 720;
const H = 160;

/**
 * Refused connects per minute over the last hour, by reason: a stacked bar chart drawn as SVG
 * on the server (no chart script), with the same numbers in a table next to it.
 */
export function failuresSection(h: HealthFigures): SafeHtml {
  const minutes = (h.until - h.since) / MINUTE_MS;
  const totals = new Map<string, number>();
  for (const f of h.failures) totals.set(f.reason, (totals.get(f.reason) ?? 0) + f.count);
  const reasons = [...totals.keys()].sort((a, b) => totals.get(b)! - totals.get(a)! || a.localeCompare(b));
  const seriesOf = (reason: string) => Math.min(reasons.indexOf(reason), SERIES - 1);
  const byMinute = new Map<number, Map<string, number>>();
  for (const f of h.failures) {
    const m = byMinute.get(f.minute) ?? new Map<string, number>();
    m.set(f.reason, f.count);
    byMinute.set(f.minute, m);
  }
  const stacked = [...byMinute.values()].map((m) => [...m.values()].reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...stacked);
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  const barW = W / minutes;
  const bars: SafeHtml[] = [];
  for (const [minute, counts] of [...byMinute].sort((a, b) => a[0] - b[0])) {
    const x = ((minute - h.since) / MINUTE_MS) * barW;
    let y = H;
    for (const reason of reasons) {
      const n = counts.get(reason);
      if (n === undefined) continue;
      const bh = (n / max) * (H - 10);
      y -= bh;
      bars.push(
        html`<rect class="s${seriesOf(reason)}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${bh.toFixed(1)}"><title>${utc(minute).slice(11, 16)} UTC: ${n} × ${refusalWords(reason)}</title></rect>`,
      );
    }
  }
  const summary =
    total === 0
      ? 'No refused connects in the last hour.'
      : `${total} refused connects in the last hour; most often: ${refusalWords(reasons[0]!)} (${totals.get(reasons[0]!)}).`;
  return html`<h2 id="failures-h">Refused connects, last hour</h2>
<p data-failures-total>${summary}</p>
<p class="muted">Repeats of a refusal (the same address, client and reason within a minute, or a flood) are counted by the broker and added here when their minute ends, in the minute they began.</p>
<figure class="chart">
<svg viewBox="0 0 ${W} ${H + 20}" width="${W}" height="${H + 20}" role="img" aria-labelledby="chart-title">
  <title id="chart-title">Refused connects per minute by reason over the last hour. ${summary}</title>
  <line class="axis" x1="0" y1="${H}" x2="${W}" y2="${H}"></line>
  ${bars}
  <text x="0" y="${H + 15}">${utc(h.since).slice(11, 16)}</text>
  <text x="${W / 2}" y="${H + 15}" text-anchor="middle">−30 min</text>
  <text x="${W}" y="${H + 15}" text-anchor="end">now</text>
  <text x="2" y="10">max ${max}/min</text>
</svg>
${reasons.length > 0
  ? html`<figcaption><ul class="legend">${reasons.map(
      (r) => html`<li><svg width="12" height="12" aria-hidden="true"><rect class="s${seriesOf(r)}" width="12" height="12"></rect></svg> ${refusalWords(r)} <code>${r}</code>: ${totals.get(r)}</li>`,
    )}</ul></figcaption>`
  : null}
</figure>
<table class="list">
  <caption>Refused connects by minute and reason (the chart's numbers)</caption>
  <thead><tr><th scope="col">Minute (UTC)</th><th scope="col">Reason</th><th scope="col">Count</th></tr></thead>
  <tbody>${
    h.failures.length === 0
      ? html`<tr><td colspan="3">None.</td></tr>`
      : [...h.failures].reverse().map(
          (f) => html`<tr><td>${utc(f.minute).slice(0, 16)}</td><td>${refusalWords(f.reason)} <code>${f.reason}</code></td><td>${f.count}</td></tr>`,
        )
  }</tbody>
</table>
<h2 id="top-h">Most refused, last hour</h2>
<table class="list">
  <caption class="visually-hidden">Most refused principals in the last hour</caption>
  <thead><tr><th scope="col">Client</th><th scope="col">Refused connects</th></tr></thead>
  <tbody>${
    h.topRefused.length === 0
      ? html`<tr><td colspan="2">None.</td></tr>`
      : h.topRefused.map(
          (t) => html`<tr><th scope="row">${t.principal === null ? html`<span class="muted">(client ids that are not ids, or repeats over several clients)</span>` : principalLink(t.principal)}</th><td>${t.count}</td></tr>`,
        )
  }</tbody>
</table>
`;
}

/** Fleet health: connected devices and sessions, refused connects by reason, the most refused ids. */
export function healthPage(o: { h: HealthFigures; sessions: number; session: ConsoleSession }, assets: ShellAssets): SafeHtml {
  const h = o.h;
  return page(
    {
      title: 'Fleet health',
      section: 'health',
      session: o.session,
      events: '/console/events?events=fleet,refusal',
      body: html`<h1>Fleet health</h1>
<dl class="figures">
  <div><dt>Connected devices</dt><dd aria-live="polite"><span data-connected-count>${h.connected.toLocaleString('en-US')}</span> of ${h.devices.toLocaleString('en-US')}</dd></div>
  <div><dt>Live MQTT sessions (devices and services)</dt><dd>${o.sessions}</dd></div>
</dl>
<section id="failures" aria-labelledby="failures-h" data-refresh-src="/console/health/failures">
${failuresSection(h)}
</section>
<p>Metrics for Prometheus: <a href="/metrics">/metrics</a>.</p>
`,
    },
    assets,
  );
}
