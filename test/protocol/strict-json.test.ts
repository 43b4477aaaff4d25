/** protocol.md §The connect token: header and payload are UTF-8 JSON exactly (the strict parser). */
import { describe, expect, it } from 'vitest';
import { parseStrictJson } from '../../device-sdk/src/protocol/internal/strict-json.ts';

const parse = (text: string | Buffer) => parseStrictJson(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);

describe('parseStrictJson', () => {
  it('parses what JSON.parse parses when nothing is ambiguous', () => {
    for (const text of ['{}', '[]', '{"a":1,"b":[1,{"a":2}],"c":{"a":3}}', '{"a":"x\\"y","b":"\\\\","a\\u0062":1}', ' {"k" : [ ] } ', '"s"', '1', 'null']) {
      expect(parse(text), text).toEqual({ value: JSON.parse(text) });
    }
  });

  it('refuses a member name given twice in any object, after escapes are decoded', () => {
    for (const text of ['{"a":1,"a":1}', '{"alg":"none","alg":"ES256"}', '{"sub":1,"\\u0073ub":2}', '{"x":[{"k":1,"k":2}]}', '{"a":{"b":{"c":1,"c":2}}}', '{"a\\"":1,"a\\"":2}']) {
      expect(parse(text), text).toEqual({ problem: 'duplicate member name' });
    }
    // a string value equal to a name, or one name in two objects, is no duplicate
    for (const text of ['{"a":"a"}', '{"a":{"a":1}}', '[{"a":1},{"a":1}]', '{"a":1,"b":{"a":1}}', '{"x":["a","a"],"a":2}']) {
      expect(parse(text), text).toEqual({ value: JSON.parse(text) });
    }
  });

  it('refuses a byte-order mark, invalid UTF-8 and what is not JSON', () => {
    expect(parse('\uFEFF{}')).toEqual({ problem: 'byte-order mark' });
    expect(parse(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]))).toEqual({ problem: 'not UTF-8' });
    for (const text of ['{a:1}', "{'a':1}", '{"a":1,}', '', ' \uFEFF{}']) expect(parse(text), text).toEqual({ problem: 'not JSON' });
  });

  it('is iterative: deep nesting costs no stack', () => {
    const depth = 100_000;
    expect(parse(`${'['.repeat(depth)}${']'.repeat(depth)}`)).toHaveProperty('value');
    expect(parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)).toHaveProperty('value');
  });
});
