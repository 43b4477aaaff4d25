/**
 * Enrollment-token id patterns (api.md §Zero-touch enrollment, `idPattern`): a regular
 * expression every enrolling device id must match in full. The pattern comes from an admin but is
 * run against device input, so it is checked at token creation to rule out catastrophic
 * backtracking (ReDoS): bounded length, always anchored, no backreferences or lookaround, no
 * repeated group that itself contains a quantifier or an alternation (star height ≤ 1), and a
 * bounded number of repeating quantifiers. Device ids are ≤ 64 characters, so what is left
 * runs in polynomial time with a small exponent.
 */

export const MAX_ID_PATTERN_LENGTH = 128;
export const MAX_REPEATS = 4;

export type IdPatternCheck = { ok: true; regex: RegExp } | { ok: false; reason: string };

interface Frame {
  quantified: boolean;
  alternation: boolean;
}

/**
 * Checks and compiles an id pattern, anchored as `^(?:pattern)$`.
 *
 * @example
 * ```ts
 * const c = checkIdPattern('thermo-[0-9]{4}'); if (c.ok) c.regex.test('thermo-0042') // true
 * checkIdPattern('(a+)+$') // { ok: false, reason: 'nested repetition' }
 * ```
 */
export function checkIdPattern(pattern: string): IdPatternCheck {
  if (typeof pattern !== 'string' || pattern.length === 0) return { ok: false, reason: 'empty pattern' };
  if (pattern.length > MAX_ID_PATTERN_LENGTH) return { ok: false, reason: `longer than ${MAX_ID_PATTERN_LENGTH} characters` };
  const structural = checkStructure(pattern);
  if (structural !== null) return { ok: false, reason: structural };
  try {
    return { ok: true, regex: new RegExp(`^(?:${pattern})$`, 'u') };
  } catch {
    return { ok: false, reason: 'not a valid regular expression' };
  }
}

/** True when `deviceId` matches the (already checked) pattern in full. */
export function idMatchesPattern(pattern: string, deviceId: string): boolean {
  const c = checkIdPattern(pattern);
  return c.ok && c.regex.test(deviceId);
}

function checkStructure(p: string): string | null {
  const stack: Frame[] = [{ quantified: false, alternation: false }];
  let lastGroup: Frame | null = null; // the group that just closed, if the previous atom was one
  let repeats = 0;
  let i = 0;
  while (i < p.length) {
    const ch = p[i]!;
    const top = stack[stack.length - 1]!;
    if (ch === '\\') {
      const next = p[i + 1];
      if (next === undefined) return 'trailing backslash';
      if (/[1-9k]/.test(next)) return 'backreferences are not allowed';
      i += 2;
      lastGroup = null;
      continue;
    }
    if (ch === '[') {
      i += 1;
      while (i < p.length && p[i] !== ']') i += p[i] === '\\' ? 2 : 1;
      if (i >= p.length) return 'unterminated character class';
      i += 1;
      lastGroup = null;
      continue;
    }
    if (ch === '(') {
      if (p[i + 1] === '?') {
        const kind = p.slice(i + 2, i + 4);
        if (p[i + 2] === ':') i += 3;
        else if (p[i + 2] === '<' && kind !== '<=' && kind !== '<!') {
          const close = p.indexOf('>', i);
          if (close === -1) return 'unterminated group name';
          i = close + 1;
        } else return 'lookaround is not allowed';
      } else i += 1;
      stack.push({ quantified: false, alternation: false });
      lastGroup = null;
      continue;
    }
    if (ch === ')') {
      if (stack.length === 1) return 'unbalanced parenthesis';
      const closed = stack.pop()!;
      const parent = stack[stack.length - 1]!;
      parent.quantified ||= closed.quantified;
      parent.alternation ||= closed.alternation;
      lastGroup = closed;
      i += 1;
      continue;
    }
    if (ch === '|') {
      top.alternation = true;
      lastGroup = null;
      i += 1;
      continue;
    }
    const q = readQuantifier(p, i);
    if (q !== null) {
      if (q.repeating) {
        if (lastGroup !== null && (lastGroup.quantified || lastGroup.alternation)) return 'nested repetition';
        repeats += 1;
        if (repeats > MAX_REPEATS) return `more than ${MAX_REPEATS} repeating quantifiers`;
        top.quantified = true;
      }
      i = q.end;
      if (p[i] === '?') i += 1; // lazy modifier
      lastGroup = null;
      continue;
    }
    lastGroup = null;
    i += 1;
  }
  return stack.length === 1 ? null : 'unbalanced parenthesis';
}

/** `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` at `i`; `repeating` when it can match its atom more than once. */
function readQuantifier(p: string, i: number): { end: number; repeating: boolean } | null {
  const ch = p[i];
  if (ch === '*' || ch === '+') return { end: i + 1, repeating: true };
  if (ch === '?') return { end: i + 1, repeating: false };
  if (ch !== '{') return null;
  const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
  if (m === null) return null;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
  return { end: i + m[0].length, repeating: max > 1 };
}
