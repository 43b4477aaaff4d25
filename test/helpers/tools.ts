import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

/** External commands a test drives (an independent MQTT client, curl, bash), and whether to run it. */
export interface RequiredTools {
  /** the commands not on PATH */
  readonly missing: readonly string[];
  /** skip the test: something is missing and this is not a CI run */
  readonly skip: boolean;
  /** appended to the test's name when something is missing: what it needs */
  readonly note: string;
  /** fails the test when something is missing (it only runs then under CI=true) */
  assertPresent(): void;
}

/**
 * A test that needs `names` is skipped with one line saying what to install when they are absent,
 * except under `CI=true`: CI installs them, so there their absence fails the run instead of hiding it.
 *
 * @example
 * ```ts
 * const tools = requireTools(['mosquitto_pub'], 'apt-get install mosquitto-clients');
 * it.skipIf(tools.skip)(`publishes with mosquitto_pub${tools.note}`, () => { tools.assertPresent(); … });
 * ```
 */
export function requireTools(names: readonly string[], install: string, env: Readonly<Record<string, string | undefined>> = process.env): RequiredTools {
  const missing = names.filter((name) => spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0);
  const reason = `${missing.join(', ')} not installed (${install})`;
  const skip = missing.length > 0 && env.CI !== 'true';
  if (skip) console.warn(`skipped, ${reason}`); // the one line a skip prints, whatever the reporter
  return {
    missing,
    skip,
    note: missing.length > 0 ? ` [needs ${missing.join(', ')}: ${install}]` : '',
    assertPresent() {
      expect(missing, `CI=true and ${reason}: CI must install it`).toEqual([]);
    },
  };
}
