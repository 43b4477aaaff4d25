import type { OptionSpecs } from '../args.ts';

/** Options every admin command takes (docs/configuration.md: `--url`, `--admin-token` or LATCHKEY_ADMIN_TOKEN). */
export const ADMIN_OPTIONS = {
  url: { type: 'string' },
  'admin-token': { type: 'string' },
  'data-dir': { type: 'string' },
} as const satisfies OptionSpecs;

export const ADMIN_OPTIONS_HELP = `Connection:
  --url <url>            the provisioning API (LATCHKEY_URL; default http://127.0.0.1:8080)
  --admin-token <token>  admin token (LATCHKEY_ADMIN_TOKEN; prefer the variable: flags show in ps);
                         default: read from <data dir>/admin-token as written by latchkey up
  --data-dir <dir>       where to find admin-token (LATCHKEY_DATA_DIR; default ./data)`;
