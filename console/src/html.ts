/**
 * Server-side HTML with escaping by default: every value interpolated into `html`...`` is
 * escaped unless it is itself SafeHtml (the result of another `html` or of `raw`). Arrays are
 * joined. `null`, `undefined` and `false` render nothing.
 *
 * @example
 * ```ts
 * html`<td>${device.id}</td>`            // '<td>a&lt;b</td>' for the id 'a<b'
 * html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`
 * ```
 */
const BRAND: unique symbol = Symbol('SafeHtml');

export class SafeHtml {
  readonly [BRAND] = true;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

export type Renderable = SafeHtml | string | number | boolean | null | undefined | readonly Renderable[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function render(v: Renderable): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.text;
  if (Array.isArray(v)) return (v as readonly Renderable[]).map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Markup written in our own source (never data): trusted as it is. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** A query string from defined, non-empty values (`?a=1&b=x`), or ''. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
