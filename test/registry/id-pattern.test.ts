import { describe, expect, it } from 'vitest';
import { checkIdPattern, idMatchesPattern } from '../../provisioning/src/enrollment/id-pattern.ts';

describe('enrollment id patterns', () => {
  it.each([
    ['thermo-[0-9]{4}', 'thermo-0042', true],
    ['thermo-[0-9]{4}', 'xthermo-0042', false], // always anchored
    ['thermo-[0-9]{4}', 'thermo-00421', false],
    ['lock-.*', 'lock-front', true],
    ['a|b-device', 'a', true], // alternation is anchored as a whole
    ['a|b-device', 'a-device', false],
    ['(?:site1|site2)-[a-z]+', 'site2-door', true],
    ['(?<site>[a-z]+)-[0-9]+', 'hall-12', true],
  ])('%s against %s → %s', (pattern, id, expected) => {
    expect(checkIdPattern(pattern).ok).toBe(true);
    expect(idMatchesPattern(pattern, id)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['x'.repeat(129), 'too long'],
    ['(a+)+', 'nested quantifier'],
    ['(a*)*b', 'nested star'],
    ['(a|a)*', 'repeated alternation'],
    ['((ab)+c)+', 'deep nesting'],
    ['(a{2,})+', 'nested counted'],
    ['(\\w+\\d?)*', 'nested with escapes'],
    ['(a)\\1', 'backreference'],
    ['(?=a)a', 'lookahead'],
    ['(?<!a)b', 'lookbehind'],
    ['a*a*a*a*a*', 'too many repeats'],
    ['[a-', 'unterminated class'],
    ['(abc', 'unbalanced'],
    ['abc)', 'unbalanced'],
    ['a{2', 'invalid under the u flag'],
  ])('refuses %s (%s)', (pattern) => {
    expect(checkIdPattern(pattern).ok).toBe(false);
  });

  it('allows a bounded optional group around a quantifier', () => {
    expect(checkIdPattern('dev(-[0-9]+)?').ok).toBe(true);
  });
});
