/** The `latchkey` process (cli/bin/latchkey.js imports this): real argv, env and stdio. */
import { runCli } from './run-cli.ts';

// `latchkey token | head -c 20` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  write: (text) => process.stdout.write(text),
  isTTY: process.stdout.isTTY === true,
});
