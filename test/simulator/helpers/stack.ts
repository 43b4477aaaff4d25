/**
 * A real latchkey stack for simulator tests: SQLite registry in a temp dir, the broker and the
 * provisioning HTTP API on 127.0.0.1 port 0, composed like the CLI's composition root.
 * `close()` tears everything down and removes the temp dir.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Registry as MetricsRegistry } from 'prom-client';
import { createBroker, type BrokerConfigInput, type BrokerLog } from '../../../broker/src/index.ts';
import { buildApp } from '../../../provisioning/src/index.ts';
import { openRegistry } from '../../../provisioning/src/registry/index.ts';
import type { EmbeddedStack } from '../../../cli/src/simulate/simulate-command.ts';
import { runFleet, type FleetResult } from '../../../simulator/src/fleet.ts';
import type { FleetOptions } from '../../../simulator/src/fleet-options.ts';
import type { ProgressSnapshot } from '../../../simulator/src/progress.ts';

export interface TestStack extends EmbeddedStack {
  /** Live authenticated MQTT sessions. */
  readonly sessionCount: number;
  /** Error-level log entries (a healthy run has none). */
  readonly errors: { msg: string; obj: object }[];
}

export async function startTestStack(broker: BrokerConfigInput = {}): Promise<TestStack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-sim-'));
  const errors: { msg: string; obj: object }[] = [];
  const log: BrokerLog = {
    debug() {},
    info() {},
    warn() {},
    error: (obj, msg) => errors.push({ obj, msg }),
  };
  const clock = Date.now;
  const adminToken = randomBytes(24).toString('base64url');
  const registry = await openRegistry(path.join(dir, 'latchkey.db'), { clock });
  const metrics = new MetricsRegistry();
  const b = createBroker({ config: { host: '127.0.0.1', mqttPort: 0, ...broker }, registry, clock, log, metrics });
  const app = await buildApp({ config: { adminToken, dataDir: dir }, registry, clock, metrics, messaging: b.messaging, brokerReady: () => b.ready });
  await b.listen();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const httpPort = (app.server.address() as AddressInfo).port;
  return {
    httpUrl: `http://127.0.0.1:${httpPort}`,
    mqttUrl: `mqtt://127.0.0.1:${b.addresses.mqtt!.port}`,
    adminToken,
    errors,
    get sessionCount() {
      return b.sessionCount;
    },
    async close() {
      await Promise.allSettled([b.close(), app.close()]);
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs a fleet against `stack` until `enough` holds for a steady-phase progress snapshot (then
 * stops it), or until `options.durationS`, which is only a cap. Fleet tests drive runs by counts,
 * never by durations: `endedByCounts` says the counts were reached before the cap.
 */
export async function runFleetUntil(
  stack: TestStack,
  options: Partial<FleetOptions>,
  enough: (s: ProgressSnapshot) => boolean,
): Promise<{ run: FleetResult; endedByCounts: boolean }> {
  const stop = new AbortController();
  let endedByCounts = false;
  const run = await runFleet(
    { httpUrl: stack.httpUrl, mqttUrl: stack.mqttUrl, adminToken: stack.adminToken, ...options },
    {
      signal: stop.signal,
      onProgress: (s) => {
        if (s.phase === 'steady' && enough(s)) {
          endedByCounts = true;
          stop.abort();
        }
      },
    },
  );
  return { run, endedByCounts };
}
