/**
 * How deeply JSON documents from outside may nest (issue 16): JSON.parse copes with any depth,
 * but JSON.stringify, the response serializer and anything else that walks a value recursively
 * overflow the stack at a few thousand levels. Every JSON body of the HTTP API, and every JSON
 * payload a device sends that the service keeps or returns (state, command replies), is checked
 * against this before it is parsed.
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/**
 * True when `text` opens more than `max` nested objects/arrays at some point. One iterative pass
 * over the text, skipping string contents (so `"[[["` counts nothing); nothing recurses, so any
 * input is safe. It does not validate JSON: malformed text is for the parser to refuse.
 *
 * @example
 * ```ts
 * jsonDepthExceeds('{"a":[1,{"b":2}]}', 2) // true: three levels
 * jsonDepthExceeds('{"a":"[[[[["}', 1)     // false
 * ```
 */
export function jsonDepthExceeds(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuote(text, i);
      if (i === -1) return false;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

/** Index of the quote that closes the string opened at `open`, or -1 when it never closes. */
function closingQuote(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q === -1) return -1;
    let backslashes = 0;
    for (let j = q - 1; text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return q;
    from = q + 1;
  }
}
