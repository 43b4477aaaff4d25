/** Why a text is not JSON exactly as RFC 8259 writes it. */
export type StrictJsonProblem = 'byte-order mark' | 'not UTF-8' | 'not JSON' | 'duplicate member name';

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses UTF-8 JSON exactly, refusing what lets two parsers read one text two ways: a leading
 * byte-order mark (a decoder that strips it silently differs from one that does not), bytes that
 * are not UTF-8, and a member name given twice in any object (`JSON.parse` keeps the last one
 * silently; RFC 8259 §4 leaves it to each parser). Names are compared after their escapes are
 * decoded (`"sub"` and `"\u0073ub"` are one name).
 *
 * @example
 * ```ts
 * parseStrictJson(Buffer.from('{"sub":"a","sub":"b"}')) // { problem: 'duplicate member name' }
 * ```
 */
export function parseStrictJson(bytes: Uint8Array): { value: unknown } | { problem: StrictJsonProblem } {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { problem: 'byte-order mark' };
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return { problem: 'not UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'not JSON' };
  }
  return hasDuplicateMember(text) ? { problem: 'duplicate member name' } : { value };
}

/**
 * Scans text already known to be valid JSON for an object holding one member name twice. One pass,
 * iterative (a stack of the names seen per open object, nothing per level on the call stack), so
 * its cost is linear in the text, which the token size cap bounds.
 */
function hasDuplicateMember(text: string): boolean {
  /** one entry per open container: the member names of an object, null for an array */
  const open: (Set<string> | null)[] = [];
  let nameNext = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      const start = i;
      let escaped = false;
      for (i++; text.charCodeAt(i) !== 0x22; i++) {
        if (text.charCodeAt(i) === 0x5c) {
          escaped = true;
          i++; // the escaped character, so `\"` does not end the string
        }
      }
      const names = open[open.length - 1];
      if (nameNext && names) {
        const literal = text.slice(start, i + 1);
        const name = escaped ? (JSON.parse(literal) as string) : literal.slice(1, -1);
        if (names.has(name)) return true;
        names.add(name);
        nameNext = false;
      }
    } else if (ch === 0x7b) {
      open.push(new Set());
      nameNext = true;
    } else if (ch === 0x5b) {
      open.push(null);
      nameNext = false;
    } else if (ch === 0x7d || ch === 0x5d) {
      open.pop();
      nameNext = false;
    } else if (ch === 0x2c) {
      nameNext = open[open.length - 1] instanceof Set;
    }
  }
  return false;
}
