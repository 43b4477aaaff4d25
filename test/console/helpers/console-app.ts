/**
 * The provisioning app with the console registered, over a real registry (SQLite, or PostgreSQL
 * with `backend`: test/registry/registry-fixture.ts) with an injected clock, the real broker (port 0) writing to the observed registry and handing its
 * messaging to the API and the console, as `latchkey up` wires them (cli/src/stack.ts). For
 * app.inject tests and real-socket SSE tests.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Logger } from 'pino';
import { Registry as MetricsRegistry } from 'prom-client';
import { registerConsole, type ConsoleDeps } from '../../../console/src/index.ts';
import { buildApp, FleetEvents, observeRegistry, type HttpConfig } from '../../../provisioning/src/index.ts';
import type { Registry } from '../../../provisioning/src/registry/index.ts';
import { createBroker, type Broker } from '../../../broker/src/index.ts';
import { registryFixture, type BackendName, type TestClock } from '../../registry/registry-fixture.ts';

export const ADMIN_TOKEN = 'console-test-admin-token-0123456789';

export interface ConsoleApp {
  app: FastifyInstance;
  registry: Registry;
  clock: TestClock;
  events: FleetEvents;
  broker: Broker;
  /** the registry as the latchkey broker would write to it (statuses, refusals feed the events) */
  brokerRegistry: ReturnType<typeof observeRegistry>['brokerRegistry'];
  /** listen on 127.0.0.1:0 (for SSE); returns the base URL */
  listen(): Promise<string>;
  /** signs in through the form; returns the cookie header value and the session's CSRF token */
  signIn(): Promise<{ cookie: string; csrf: string }>;
  /** a POSTed form (urlencoded), same-origin headers unless overridden */
  post(url: string, fields: Record<string, string>, cookie?: string, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  get(url: string, cookie?: string): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startConsoleApp(
  o: { log?: Logger; console?: Partial<ConsoleDeps>; http?: Partial<HttpConfig>; backend?: BackendName } = {},
): Promise<ConsoleApp> {
  const db = await registryFixture(o.backend ?? 'sqlite');
  const { clock, registry } = db;
  const events = new FleetEvents();
  const observed = observeRegistry(registry, events, clock);
  const metrics = new MetricsRegistry();
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const broker = createBroker({
    config: { host: '127.0.0.1', mqttPort: 0 },
    registry: observed.brokerRegistry,
    onSessionEvent: observed.onSessionEvent,
    clock,
    log: quiet,
    metrics,
  });
  await broker.listen();
  const app = await buildApp({
    config: { adminToken: ADMIN_TOKEN, ...o.http },
    registry,
    clock,
    metrics,
    messaging: broker.messaging,
    events,
    ...(o.log !== undefined ? { log: o.log } : {}),
  });
  await registerConsole(app, {
    registry,
    broker: { get sessionCount() { return broker.sessionCount; }, messaging: broker.messaging, events },
    adminToken: ADMIN_TOKEN,
    clock,
    ...o.console,
  });
  const host = 'console.test';
  const sameOrigin = { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' };
  const c: ConsoleApp = {
    app,
    registry,
    clock,
    events,
    broker,
    brokerRegistry: observed.brokerRegistry,
    async listen() {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const a = app.server.address() as { port: number };
      return `http://127.0.0.1:${a.port}`;
    },
    async signIn() {
      const res = await c.post('/console/login', { token: ADMIN_TOKEN });
      if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode}`);
      const cookie = String(res.headers['set-cookie']).split(';')[0]!;
      const page = await c.get('/console/enrollment-tokens', cookie);
      const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
      if (csrf === undefined) throw new Error('no CSRF token on the page');
      return { cookie, csrf };
    },
    post(url, fields, cookie, headers = {}) {
      return app.inject({
        method: 'POST',
        url,
        headers: { ...sameOrigin, 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}), ...headers },
        payload: new URLSearchParams(fields).toString(),
      });
    },
    get(url, cookie) {
      return app.inject({ method: 'GET', url, headers: { host, ...(cookie ? { cookie } : {}) } });
    },
    async close() {
      observed.close();
      await app.close();
      await broker.close();
      await db.cleanup();
    },
  };
  return c;
}
