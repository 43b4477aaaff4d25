/**
 * The CLI's argument parser (cli/src/args.ts): strict, with one allowance — a string option's value
 * may begin with a dash. Server-assigned kids are random base64url, so one in 64 does; before this,
 * `latchkey devices remove-key lock-2 --kid -Xb3…` was a usage error (a full run saw exit 2).
 */
import { describe, expect, it } from 'vitest';
import { parseCommandArgs } from '../../cli/src/args.ts';
import { CliError } from '../../cli/src/cli-error.ts';

const OPTIONS = { kid: { type: 'string' }, force: { type: 'boolean' }, out: { type: 'string', short: 'o' } } as const;
const parse = (...argv: string[]) => parseCommandArgs('devices remove-key', argv, OPTIONS, 1);
const usage = (...argv: string[]) => {
  try {
    parse(...argv);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).code).toBe('usage');
    return (e as CliError).message;
  }
  throw new Error('expected a usage error');
};

describe('parseCommandArgs', () => {
  it('takes a value that begins with a dash, separated or joined', () => {
    expect(parse('lock-2', '--kid', '-Xb3dA_9', '--force').values).toEqual({ kid: '-Xb3dA_9', force: true });
    expect(parse('--kid=-Xb3dA_9').values.kid).toBe('-Xb3dA_9');
    expect(parse('--kid', '--Xb3').values.kid).toBe('--Xb3'); // not an option of this command
    expect(parse('--out', '-q').values.out).toBe('-q'); // -q is no short option here
    expect(parse('lock-2', '--kid', 'abc').positionals).toEqual(['lock-2']);
  });

  it('still reports a missing value when the next word is an option of the command', () => {
    expect(usage('--kid', '--force')).toMatch(/option --kid needs a value/);
    expect(usage('--kid', '-h')).toMatch(/option --kid needs a value/);
    expect(usage('--kid', '-o', 'x')).toMatch(/option --kid needs a value/);
    expect(usage('--kid', '--out=x')).toMatch(/option --kid needs a value/);
    expect(usage('--kid')).toMatch(/option --kid needs a value/);
  });

  it('stays strict otherwise', () => {
    expect(usage('--nope')).toMatch(/unknown option --nope/);
    expect(usage('--force', '-x')).toMatch(/unknown option -x/); // a boolean takes no value
    expect(usage('--kid', 'a', '--kid', 'b')).toMatch(/--kid given more than once/);
    expect(usage('a', 'b')).toMatch(/unexpected argument "b"/);
    // after `--` every word is positional, dashes and all
    expect(parse('--', '-Xb3').positionals).toEqual(['-Xb3']);
    expect(usage('--kid', '--', 'x')).toMatch(/option --kid needs a value/);
  });
});
