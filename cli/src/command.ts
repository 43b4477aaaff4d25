/** What every command receives: its arguments and the process around it (injected for tests). */
export interface CommandContext {
  /** the arguments after the command name (and subcommand) */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** writes a line (or text ending in a newline) to stdout */
  readonly out: (text: string) => void;
  /** writes a line to stderr */
  readonly err: (text: string) => void;
  /** writes text to stdout as it is (progress lines that redraw themselves) */
  readonly write: (text: string) => void;
  /** stdout is a terminal */
  readonly isTTY: boolean;
}

/**
 * One `latchkey` command: its help text and what it does. `run` resolves to the exit code;
 * failures throw CliError.
 */
export interface Command {
  readonly name: string;
  /** the full `latchkey <name> --help` text */
  readonly help: string;
  run(ctx: CommandContext): Promise<number>;
}

/** A command as `latchkey --help` lists it; its module is loaded only when it runs. */
export interface CommandEntry {
  readonly name: string;
  /** one line for `latchkey --help` */
  readonly summary: string;
  load(): Promise<Command>;
}
