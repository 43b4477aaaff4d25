/** A plain aedes (no latchkey hooks but those a test passes) on a TCP port 0, closed after each test. */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import { afterEach } from 'vitest';

/**
 * Registers the `afterEach` that closes what `start` opened; call once per test file.
 *
 * @example
 * ```ts
 * const plain = plainAedes();
 * const { aedes, url, port } = await plain.start({ authorizeForward });
 * ```
 */
export function plainAedes(): { start(opts: AedesOptions): Promise<{ aedes: Aedes; url: string; port: number }> } {
  let running: { aedes: Aedes; server: Server } | null = null;
  afterEach(async () => {
    if (running === null) return;
    const { aedes, server } = running;
    running = null;
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    async start(opts) {
      const aedes = await Aedes.createBroker(opts);
      const server = createServer((socket) => aedes.handle(socket));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      running = { aedes, server };
      const port = (server.address() as AddressInfo).port;
      return { aedes, port, url: `mqtt://127.0.0.1:${port}` };
    },
  };
}
