/**
 * `@latchkey/cli` — the `latchkey` command (docs/configuration.md) and the composition root behind `latchkey up`,
 * for embedding the whole stack in tests, benchmarks and tools.
 */
export { runCli, COMMANDS } from './run-cli.ts';
export type { CliIo } from './run-cli.ts';
export { startStack, DATABASE_FILE } from './stack.ts';
export type { Stack, StackAddresses, StackDeps, BoundAddress } from './stack.ts';
export { resolveUpConfig, DEFAULT_UP_CONFIG, UP_SETTINGS, isLoopbackHost, LOG_LEVELS } from './config.ts';
export type { UpConfig, LogLevel } from './config.ts';
export { createLogger, REDACT_PATHS } from './logger.ts';
export { CliError, formatError } from './cli-error.ts';
export type { CliErrorCode } from './cli-error.ts';
