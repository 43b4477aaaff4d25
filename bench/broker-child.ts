/**
 * The broker side of the broker benchmarks, run in its own process so its CPU time and memory
 * can be measured alone: `tsx bench/broker-child.ts <auth|bare> <devices.json>`.
 * - `auth`: latchkey's createBroker over a real SQLite registry holding the devices' public keys.
 * - `bare`: the same aedes 1.x with the same options (connect timeout, client-id length) on a
 *   plain net server, without authentication or latchkey's hooks (accepts everyone).
 * Talks to the parent over IPC: sends {port} when listening, answers {cmd:'cpu'|'mem'|'stop'}.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Aedes } from 'aedes';
import { Registry as MetricsRegistry } from 'prom-client';
import { DEFAULT_LIMITS, parsePublicKey } from '@latchkey/device-sdk/protocol';
import { openRegistry } from '../provisioning/src/registry/index.ts';
import { createBroker } from '../broker/src/index.ts';

type Request = { cmd: 'cpu' } | { cmd: 'mem' } | { cmd: 'stop' };

const [mode, devicesFile] = process.argv.slice(2);
if (mode !== 'auth' && mode !== 'bare') throw new TypeError('usage: broker-child.ts <auth|bare> <devices.json>');
if (typeof process.send !== 'function') throw new TypeError('broker-child.ts must be started with an IPC channel');
const send = process.send.bind(process);

const silent = { debug() {}, info() {}, warn() {}, error() {} };
let stop: () => Promise<void>;
let port: number;

if (mode === 'auth') {
  const devices = JSON.parse(readFileSync(devicesFile as string, 'utf8')) as Array<{ id: string; publicKeyPem: string }>;
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-bench-'));
  const registry = openRegistry(path.join(dir, 'bench.db'), { clock: Date.now });
  for (let i = 0; i < devices.length; i += 5000) {
    registry.devices.createMany(
      devices.slice(i, i + 5000).map((d) => ({ id: d.id, key: parsePublicKey(d.publicKeyPem) })),
      'bench',
    );
  }
  const broker = createBroker({
    config: { host: '127.0.0.1', mqttPort: 0 }, // defaults otherwise (throttling on)
    registry,
    log: silent,
    metrics: new MetricsRegistry(),
  });
  await broker.listen();
  port = broker.addresses.mqtt?.port as number;
  stop = async () => {
    await broker.close();
    registry.close();
    rmSync(dir, { recursive: true, force: true });
  };
} else {
  // the aedes options createBroker sets besides its hooks (broker/src/create-broker.ts)
  const aedes = await Aedes.createBroker({ connectTimeout: DEFAULT_LIMITS.connectTimeout * 1000, maxClientsIdLength: 200 });
  const server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  stop = async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    server.close();
  };
}

process.on('message', (msg: Request) => {
  if (msg.cmd === 'cpu') {
    send({ cpu: process.cpuUsage() });
  } else if (msg.cmd === 'mem') {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc !== 'function') throw new TypeError('run with --expose-gc');
    for (let i = 0; i < 3; i++) gc();
    const m = process.memoryUsage();
    send({ mem: { heapUsed: m.heapUsed, rss: m.rss, external: m.external } });
  } else if (msg.cmd === 'stop') {
    void stop().then(() => process.exit(0));
  }
});
send({ port });
