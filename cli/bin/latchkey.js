#!/usr/bin/env node
// The `latchkey` command: the compiled JavaScript in ../dist (built by `npm install` in the
// repository root, or `npm run build`). Plain Node, no TypeScript at run time.
const main = new URL('../dist/main.js', import.meta.url);
try {
  await import(main.href);
} catch (e) {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(main.pathname)) {
    process.stderr.write('error: not_built: latchkey is not compiled yet; run `npm install` (or `npm run build`) in the repository root\n');
    process.exit(1);
  }
  throw e;
}
