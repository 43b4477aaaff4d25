import { isDeviceId } from '@latchkey/device-sdk/protocol';
import { html, type SafeHtml } from './html.ts';
import { refusalWords } from './refusal-words.ts';

/** `2026-11-30 15:41:41 UTC` (the console shows every time in UTC). */
export function utc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** "3 min ago", "in 2 h", "just now". */
export function relative(ms: number, now: number): string {
  const d = Math.round((ms - now) / 1000);
  const a = Math.abs(d);
  const [n, unit] = a < 45 ? [0, ''] : a < 5400 ? [Math.round(a / 60), 'min'] : a < 129_600 ? [Math.round(a / 3600), 'h'] : [Math.round(a / 86_400), 'd'];
  if (n === 0) return 'just now';
  return d < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

/** A machine-readable `<time>` with the UTC time, and the relative time for people. */
export function time(ms: number | null, now: number, empty = 'never'): SafeHtml {
  if (ms === null) return html`<span class="muted">${empty}</span>`;
  return html`<time datetime="${new Date(ms).toISOString()}" title="${relative(ms, now)}">${utc(ms)}</time>`;
}

export type DeviceState = 'connected' | 'offline' | 'blocked';

export function deviceState(d: { blocked: boolean; connected: boolean }): DeviceState {
  return d.blocked ? 'blocked' : d.connected ? 'connected' : 'offline';
}

const STATE_TEXT: Record<DeviceState, string> = { connected: 'Connected', offline: 'Offline', blocked: 'Blocked' };

/** The status badge: its words carry the meaning, the colour and symbol only repeat it. */
export function badge(state: DeviceState, deviceId: string): SafeHtml {
  return html`<span class="badge ${state}" data-status-for="${deviceId}">${STATE_TEXT[state]}</span>`;
}

/** JSON as indented text (rendered escaped inside <pre>). */
export function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? 'null';
}

/** The console's path of a device page. */
export function devicePath(id: string, rest = ''): string {
  return `/console/devices/${encodeURIComponent(id)}${rest}`;
}

/** A principal: a device id as a link to its page, anything else (a service account `svc:…`) as text. */
export function principalLink(principal: string): SafeHtml | string {
  return isDeviceId(principal) ? html`<a href="${devicePath(principal)}">${principal}</a>` : principal;
}

/** A device's last refusal in words, with its code and time (what the live script writes too), or "none". */
export function lastRefusal(lastError: { code: string; at: number } | null, now: number): SafeHtml {
  if (lastError === null) return html`<span class="muted">none</span>`;
  return html`<strong>${refusalWords(lastError.code)}</strong> <code>${lastError.code}</code> · ${time(lastError.at, now)}`;
}
