import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { Clock } from '@latchkey/device-sdk/protocol';
import { EventStreams } from '../events/event-stream.ts';
import type { FleetEventSource } from '../events/fleet-events.ts';
import type { Registry } from '../registry/index.ts';
import { requireAdmin } from './admin-auth.ts';
import { resolveHttpConfig, type HttpConfig } from './config.ts';
import { FailureLimiter } from './failure-limiter.ts';
import { LOG_REDACT } from './http-logger.ts';
import { httpMetrics } from './http-metrics.ts';
import type { DeviceMessagingPort } from './messaging-port.ts';
import { installProblemHandlers } from './problem-handler.ts';
import type { RouteDeps } from './route-deps.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { deviceMessagingRoutes } from './routes/device-messaging.ts';
import { deviceRoutes } from './routes/devices.ts';
import { enrollRoutes } from './routes/enroll.ts';
import { enrollmentTokenRoutes } from './routes/enrollment-tokens.ts';
import { eventRoutes } from './routes/events.ts';
import { adminOperationRoutes, operationRoutes } from './routes/operations.ts';
import { serviceRoutes } from './routes/services.ts';

export interface AppDeps {
  /** validated by `resolveHttpConfig`; `dataDir` is accepted for the composition root's convenience and unused here */
  config: Partial<HttpConfig> & { adminToken: string; dataDir?: string };
  registry: Registry;
  clock: Clock;
  /** a pino logger; redaction of tokens and keys is applied on top of it */
  log?: Logger;
  /** the shared prom-client registry (HTTP metrics are created on it; `/metrics` serves it) */
  metrics: MetricsRegistry;
  /** the broker's in-process messaging; without it commands answer 409 device_offline */
  messaging?: DeviceMessagingPort;
  /** `/readyz` also requires this to be true when given */
  brokerReady?: () => boolean;
  /** the fleet's live events; with it, `GET /v1/events` streams them (closed on `app.close()`) */
  events?: FleetEventSource;
}

/**
 * Builds the provisioning HTTP API (http-api.md) as a fastify instance, without listening.
 *
 * @example
 * ```ts
 * const app = await buildApp({ config: { adminToken }, registry, clock: Date.now, metrics: new Registry() });
 * await app.listen({ port: 8080, host: '127.0.0.1' });
 * ```
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { dataDir: _unused, ...configInput } = deps.config;
  const config = resolveHttpConfig(configInput);
  if (typeof deps.clock !== 'function') throw new TypeError('clock must be a function returning epoch ms');
  if (deps.registry === undefined || deps.metrics === undefined) throw new TypeError('registry and metrics are required');

  const app = Fastify({
    ...(deps.log === undefined
      ? { logger: false }
      : { loggerInstance: deps.log.child({ component: 'http' }, { redact: LOG_REDACT }) as unknown as FastifyBaseLogger }),
    bodyLimit: config.bodyLimit,
    return503OnClosing: true,
    // Bodies are validated as sent: no type coercion, no silent removal of unknown properties.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }) as unknown as FastifyInstance;
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is 415

  installProblemHandlers(app);
  const metrics = httpMetrics(deps.metrics);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'latchkey provisioning API', version: '1.0.0', description: 'http-api.md; errors are RFC 9457 problem+json' },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'the admin token' },
          enrollmentToken: { type: 'http', scheme: 'bearer', description: 'an enrollment token (lket.…)' },
        },
      },
    },
  });

  const routeDeps: RouteDeps = {
    config,
    registry: deps.registry,
    clock: deps.clock,
    messaging: deps.messaging ?? null,
    limiter: new FailureLimiter(config.authFailureLimit, deps.clock),
    brokerReady: deps.brokerReady ?? null,
  };
  await app.register(async (open) => {
    operationRoutes(open, routeDeps, deps.metrics);
    enrollRoutes(open, routeDeps);
  });
  await app.register(async (admin) => {
    requireAdmin(admin, config.adminToken, routeDeps.limiter);
    deviceRoutes(admin, routeDeps);
    credentialRoutes(admin, routeDeps);
    deviceMessagingRoutes(admin, routeDeps);
    serviceRoutes(admin, routeDeps);
    enrollmentTokenRoutes(admin, routeDeps);
    adminOperationRoutes(admin, routeDeps);
    if (deps.events !== undefined) {
      const streams = new EventStreams();
      admin.addHook('preClose', async () => streams.closeAll());
      eventRoutes(admin, routeDeps, deps.events, streams);
    }
  });
  return app;
}
