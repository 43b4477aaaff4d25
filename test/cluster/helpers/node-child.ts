/**
 * One broker node in its own process, for the kill tests (test/cluster/*-process.test.ts): the
 * broker on Redis over the registry file the test shares with its other nodes. Argument: JSON
 * `{ dbPath, config }`. Prints `{"port":…,"nodeId":…}` on stdout once listening; logs warnings and
 * errors on stderr as JSON lines; ends on SIGTERM, and dies on SIGKILL, which is the point.
 */
import { Registry as MetricsRegistry } from 'prom-client';
import { createBroker, type BrokerLog } from '../../../broker/src/index.ts';
import { openRegistry } from '../../../provisioning/src/registry/index.ts';

const { dbPath, config } = JSON.parse(process.argv[2] as string) as { dbPath: string; config: Record<string, unknown> };
const line = (level: string) => (obj: object, msg: string) =>
  process.stderr.write(`${JSON.stringify({ level, msg, ...obj }, (_k, v: unknown) => (v instanceof Error ? v.message : v))}\n`);
const log: BrokerLog = { debug: () => undefined, info: line('info'), warn: line('warn'), error: line('error') };
const registry = openRegistry(dbPath, { clock: Date.now, resetSessions: false });
const broker = createBroker({ config: { host: '127.0.0.1', mqttPort: 0, ...config }, registry, log, metrics: new MetricsRegistry() });
await broker.listen();
process.stdout.write(`${JSON.stringify({ port: broker.addresses.mqtt?.port, nodeId: broker.nodeId })}\n`);
process.once('SIGTERM', () => {
  void broker.close().finally(() => {
    registry.close();
    process.exit(0);
  });
});
