import { parseArgs } from 'node:util';
import { CliError } from './cli-error.ts';

/** An option of one command: a string value, or a boolean switch. */
export type OptionSpec = { type: 'string' | 'boolean'; short?: string };
export type OptionSpecs = Record<string, OptionSpec>;

export type ParsedOptions<S extends OptionSpecs> = {
  [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : string;
};

export interface ParsedArgs<S extends OptionSpecs> {
  values: ParsedOptions<S> & { help?: boolean };
  positionals: string[];
}

/**
 * Parses `argv` strictly (node:util parseArgs): an unknown option, a missing value or a repeated
 * option is a `usage` CliError naming the option and the command. `--help`/`-h` is always known.
 *
 * @example
 * ```ts
 * const { values } = parseCommandArgs('keygen', argv, { out: { type: 'string' } }, 0);
 * ```
 */
export function parseCommandArgs<S extends OptionSpecs>(
  command: string,
  argv: readonly string[],
  options: S,
  maxPositionals: number,
): ParsedArgs<S> {
  const all: OptionSpecs = { ...options, help: { type: 'boolean', short: 'h' } };
  let parsed;
  try {
    parsed = parseArgs({
      args: attachDashValues(argv, all),
      options: all,
      strict: true,
      allowPositionals: true,
      tokens: true,
    });
  } catch (e) {
    throw new CliError('usage', `${describeParseError(e)} (see latchkey ${command} --help)`);
  }
  // parseArgs keeps the last of a repeated option silently; a repeated setting is a mistake.
  const seen = new Set<string>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new CliError('usage', `--${t.name} given more than once (see latchkey ${command} --help)`);
    seen.add(t.name);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new CliError('usage', `unexpected argument "${clip(parsed.positionals[maxPositionals]!)}" (see latchkey ${command} --help)`);
  }
  return { values: parsed.values as ParsedArgs<S>['values'], positionals: parsed.positionals };
}

/**
 * `--kid -Xb3…` as `--kid=-Xb3…`: a value may begin with a dash (a kid is random base64url, so one
 * in 64 does), and parseArgs refuses that form as ambiguous. Only when the dash word is not an
 * option of this command: `--kid --force` still reports the missing value. Nothing after `--`.
 */
function attachDashValues(argv: readonly string[], options: OptionSpecs): string[] {
  const isOption = (word: string): boolean => {
    if (word.startsWith('--')) return Object.hasOwn(options, word.slice(2).split('=')[0] as string);
    return Object.values(options).some((o) => o.short !== undefined && word.startsWith(`-${o.short}`));
  };
  const stringOption = (word: string): boolean => {
    if (!word.startsWith('--') || word.includes('=')) return false;
    const name = word.slice(2);
    return Object.hasOwn(options, name) && options[name]?.type === 'string';
  };
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (stringOption(word) && next !== undefined && next.length > 1 && next.startsWith('-') && next !== '--' && !isOption(next)) {
      out.push(`${word}=${next}`);
      i++;
    } else {
      out.push(word);
    }
  }
  return out;
}

/** Node's parseArgs messages are long; keep the option name and what is wrong with it. */
function describeParseError(e: unknown): string {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  const option = /'(-{1,2}[^'\s]*)/.exec(message)?.[1] ?? 'an option';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return message.includes('does not take an argument') ? `option ${option} takes no value` : `option ${option} needs a value`;
    default:
      return 'malformed arguments';
  }
}

/** Echo at most a short prefix of an unexpected argument (it might be a pasted secret). */
function clip(s: string): string {
  return s.length > 24 ? `${s.slice(0, 12)}…` : s;
}

/**
 * A required string option, or a `usage` error naming it.
 *
 * @example
 * ```ts
 * const out = requireOption('keygen', 'out', values.out);
 * ```
 */
export function requireOption(command: string, name: string, value: string | undefined): string {
  if (value === undefined || value.length === 0) {
    throw new CliError('usage', `latchkey ${command} needs --${name} (see latchkey ${command} --help)`);
  }
  return value;
}

/**
 * A whole-number option (`--ttl`, `--uses`), or a `usage` error naming it and its range.
 *
 * @example
 * ```ts
 * const ttl = intOption('token', 'ttl', values.ttl, { min: 1, max: 86400 });
 * ```
 */
export function intOption(command: string, name: string, value: string | undefined, range: { min: number; max: number }): number | undefined {
  return rangedOption(command, name, value, range, { syntax: /^\d{1,15}$/, what: 'an integer' });
}

/**
 * A decimal number option (`--ramp 0.5`), or a `usage` error naming it and its range.
 *
 * @example
 * ```ts
 * const rate = numberOption('simulate', 'ramp', values.ramp, { min: 0.01, max: 100_000 });
 * ```
 */
export function numberOption(command: string, name: string, value: string | undefined, range: { min: number; max: number }): number | undefined {
  return rangedOption(command, name, value, range, { syntax: /^\d{1,9}(\.\d{1,6})?$/, what: 'a number' });
}

function rangedOption(
  command: string,
  name: string,
  value: string | undefined,
  range: { min: number; max: number },
  kind: { syntax: RegExp; what: string },
): number | undefined {
  if (value === undefined) return undefined;
  const n = kind.syntax.test(value) ? Number(value) : Number.NaN;
  if (!(n >= range.min && n <= range.max)) {
    throw new CliError('usage', `--${name} must be ${kind.what} in ${range.min}..${range.max} (see latchkey ${command} --help)`);
  }
  return n;
}

/**
 * A JSON-object option (`--metadata`), or a `usage` error naming it.
 *
 * @example
 * ```ts
 * const metadata = parseJsonObject('metadata', '{"room":"kitchen"}');
 * ```
 */
export function parseJsonObject(name: string, raw: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new CliError('usage', `--${name} must be a JSON object`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CliError('usage', `--${name} must be a JSON object`);
  return v as Record<string, unknown>;
}
