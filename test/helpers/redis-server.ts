/**
 * A Redis of a test's own: `redis-server` on a free loopback port in a temp dir, killed when the
 * test is done (and when the worker exits, whatever happened). Redis pub/sub is not scoped by
 * database, so tests whose brokers share state through Redis each start their own instead of using
 * the run's (test/helpers/services.ts). They need `redis-server`: `requireTools(['redis-server'], …)`
 * (test/helpers/tools.ts) skips them with one line without it, except under CI=true. Also a TCP
 * proxy that can cut one node off Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** a connection for the test's own checks (closed by `stop`) */
  readonly client: Redis;
  /** stops the server: `save` keeps its data for the next `start` (SHUTDOWN SAVE), otherwise it is lost */
  stop(opts?: { save?: boolean }): Promise<void>;
  /** starts it again on the same port and directory */
  start(): Promise<void>;
  /** stops everything and removes the directory */
  close(): Promise<void>;
}

/**
 * Starts a throwaway redis-server; `appendonly` turns on AOF persistence (for restart tests),
 * `password` requires AUTH (the URL then carries it).
 */
export async function startRedis(opts: { appendonly?: boolean; password?: string } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', opts.appendonly === true ? 'yes' : 'no', '--daemonize', 'no', '--loglevel', 'warning'];
  if (opts.password !== undefined) args.push('--requirepass', opts.password);
  const auth = opts.password === undefined ? {} : { password: opts.password };
  const start = async () => {
    const c = spawn('redis-server', args, { stdio: 'ignore' });
    running.add(c);
    c.once('exit', () => running.delete(c));
    child = c;
    await waitUntil(async () => {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...auth });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }, 10_000);
  };
  await start();
  const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 100, ...auth });
  client.on('error', () => undefined);
  const stop = async (o: { save?: boolean } = {}) => {
    const c = child;
    if (c === null || c.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    if (o.save === true) {
      const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...auth });
      admin.on('error', () => undefined);
      await admin.connect().then(() => admin.call('SHUTDOWN', 'SAVE')).catch(() => undefined);
      admin.disconnect();
    } else {
      c.kill('SIGKILL');
    }
    await exited;
    child = null;
  };
  return {
    url: opts.password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`,
    port,
    client,
    stop,
    start,
    async close() {
      client.disconnect();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy in front of a port whose connections can be cut: `cut(ms)` drops them and refuses new ones for ms. */
export async function cuttableProxy(targetPort: number): Promise<{ port: number; cut(ms: number): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let refuseUntil = 0;
  const server = createServer((downstream) => {
    if (Date.now() < refuseUntil) {
      downstream.destroy();
      return;
    }
    const upstream = netConnect(targetPort, '127.0.0.1');
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut(ms) {
      refuseUntil = Date.now() + ms;
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Polls `predicate` every 20 ms until it holds; rejects after `timeoutMs`, with `state()` in the message. */
export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, state?: () => string | Promise<string>): Promise<void> {
  const started = Date.now();
  while (!(await predicate())) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms${state === undefined ? '' : `: ${await state()}`}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
