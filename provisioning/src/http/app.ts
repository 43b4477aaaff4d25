import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { Clock } from '@latchkey/device-sdk/protocol';
import { EventStreams } from '../events/event-stream.ts';
import type { FleetEventSource } from '../events/fleet-events.ts';
import type { Registry } from '../registry/index.ts';
import { AdminGate, requireAdmin, setAdminGate } from './admin-auth.ts';
import { requireReader } from './reader-auth.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../json-depth.ts';
import { ApiError } from './api-error.ts';
import { resolveHttpConfig, type HttpConfig } from './config.ts';
import { httpThrottles } from './failure-limiter.ts';
import { LOG_REDACT, LOG_SERIALIZERS } from './http-logger.ts';
import { httpMetrics } from './http-metrics.ts';
import type { DeviceMessagingPort } from './messaging-port.ts';
import { clientErrorHandler, frameworkErrorHandler, installProblemHandlers } from './problem-handler.ts';
import type { RouteDeps } from './route-deps.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { deviceMessagingRoutes } from './routes/device-messaging.ts';
import { deviceKeyRoutes } from './routes/device-keys.ts';
import { deviceRoutes } from './routes/devices.ts';
import { enrollRoutes } from './routes/enroll.ts';
import { enrollmentTokenRoutes } from './routes/enrollment-tokens.ts';
import { importRoutes } from './routes/import.ts';
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
  /**
   * `operations`: only `/healthz`, `/readyz`, `/metrics`, `/v1/time` and the OpenAPI document: a
   * cluster node that takes devices but serves no API (`latchkey up --role broker`). Default `all`.
   */
  surface?: 'all' | 'operations';
  /** the fleet's live events; with it, `GET /v1/events` streams them (closed on `app.close()`) */
  events?: FleetEventSource;
}

/**
 * Builds the provisioning HTTP API (docs/api.md) as a fastify instance, without listening.
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
      : {
          loggerInstance: deps.log.child({ component: 'http' }, { redact: LOG_REDACT, serializers: LOG_SERIALIZERS }) as unknown as FastifyBaseLogger,
        }),
    bodyLimit: config.bodyLimit,
    return503OnClosing: true,
    // every refusal is problem+json, also those fastify and Node raise before any route runs
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // a request id is never taken from a header (it would be logged)
    requestIdHeader: false,
    // docs/operations.md §Behind a proxy: X-Forwarded-For counts only from these addresses
    trustProxy: config.trustProxy.length === 0 ? false : [...config.trustProxy],
    // Bodies are validated as sent: no type coercion, no silent removal of unknown properties.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }) as unknown as FastifyInstance;
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is 415
  // Every JSON body's depth is checked iteratively before it is parsed (nothing downstream may
  // recurse into thousands of levels); then fastify's own parser, which refuses __proto__.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (jsonDepthExceeds(body as string)) {
      done(new ApiError('json_too_deep', `the JSON body nests more than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    parseJson(request, body as string, done);
  });

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
      info: { title: 'latchkey provisioning API', version: '1.0.0', description: 'docs/api.md; errors are RFC 9457 problem+json' },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'the admin token' },
          enrollmentToken: { type: 'http', scheme: 'bearer', description: 'an enrollment token (lket.…)' },
          serviceToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "a service account's API token (protocol.md §Service-account API tokens)" },
        },
      },
    },
  });

  const routeDeps: RouteDeps = {
    config,
    registry: deps.registry,
    clock: deps.clock,
    messaging: deps.messaging ?? null,
    throttles: httpThrottles(config.authFailureLimit, deps.clock),
    brokerReady: deps.brokerReady ?? null,
  };
  await app.register(async (open) => {
    operationRoutes(open, routeDeps, deps.metrics);
    if (deps.surface !== 'operations') enrollRoutes(open, routeDeps);
  });
  const adminGate = new AdminGate(config.adminToken, routeDeps.throttles.admin);
  setAdminGate(app, adminGate);
  if (deps.surface === 'operations') return app;
  await app.register(async (admin) => {
    requireAdmin(admin, adminGate);
    deviceRoutes(admin, routeDeps);
    credentialRoutes(admin, routeDeps);
    deviceMessagingRoutes(admin, routeDeps);
    serviceRoutes(admin, routeDeps);
    enrollmentTokenRoutes(admin, routeDeps);
    importRoutes(admin, routeDeps);
    adminOperationRoutes(admin, routeDeps);
    if (deps.events !== undefined) {
      const streams = new EventStreams();
      admin.addHook('preClose', async () => streams.closeAll());
      eventRoutes(admin, routeDeps, deps.events, streams);
    }
  });
  await app.register(async (reader) => {
    requireReader(reader, { adminToken: config.adminToken, throttle: routeDeps.throttles.admin, registry: deps.registry, rules: config, clock: deps.clock });
    deviceKeyRoutes(reader, routeDeps);
  });
  return app;
}
