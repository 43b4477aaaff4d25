import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from '../command.ts';
import { resolveUpConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { runSimulate, SIMULATE_HELP, type EmbeddedStack } from '../simulate/simulate-command.ts';
import { startStack, type BoundAddress } from '../stack.ts';

/**
 * `simulate --embedded`: the same composition as `latchkey up`, on free loopback ports, with a
 * throw-away data directory and admin token, so a simulation never touches ./data.
 * Only errors are logged (stderr), to keep the progress line readable.
 *
 * @example
 * ```ts
 * const stack = await startEmbeddedStack();
 * await stack.close();
 * ```
 */
export async function startEmbeddedStack(o: { gcpProject?: string } = {}): Promise<EmbeddedStack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-simulate-'));
  const adminToken = randomBytes(32).toString('base64url');
  const flags = { 'http-port': '0', 'mqtt-port': '0', 'data-dir': dataDir, 'log-level': 'error', ...(o.gcpProject === undefined ? {} : { 'gcp-project': o.gcpProject }) };
  const config = resolveUpConfig(flags, {});
  let stack;
  try {
    stack = await startStack({ ...config, adminToken }, { log: createLogger(config.logLevel) });
  } catch (e) {
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    httpUrl: stack.addresses.http.url,
    mqttUrl: (stack.addresses.mqtt as BoundAddress).url, // the embedded stack always serves MQTT
    adminToken,
    audience: config.broker.audience,
    async close() {
      await stack.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** `latchkey simulate` (docs/simulator.md) on the embedded stack above, with SIGINT ending the run early. */
export const simulateCommandEntry: Command = {
  name: 'simulate',
  help: SIMULATE_HELP,
  async run(ctx) {
    const stop = new AbortController();
    const onSigint = () => {
      if (stop.signal.aborted) process.exit(130);
      stop.abort();
    };
    process.on('SIGINT', onSigint);
    try {
      return await runSimulate(ctx, { startStack: startEmbeddedStack, signal: stop.signal });
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
