import type { FastifyInstance } from 'fastify';
import type { Registry as MetricsRegistry } from 'prom-client';
import { isPrincipal } from '@latchkey/device-sdk/protocol';
import { ApiError } from '../api-error.ts';
import type { RouteDeps } from '../route-deps.ts';
import { ADMIN_SECURITY, jsonObjectSchema, responses } from '../schemas.ts';

const statusSchema = { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } as const;

/** api.md §Operations and `GET /v1/time`: no admin token needed. */
export function operationRoutes(app: FastifyInstance, deps: RouteDeps, metrics: MetricsRegistry): void {
  const { registry, clock, brokerReady } = deps;

  app.get(
    '/v1/time',
    {
      schema: {
        summary: 'Server time in epoch seconds, for devices without a real-time clock',
        tags: ['operations'],
        response: { 200: { type: 'object', properties: { now: { type: 'integer' } }, required: ['now'] } },
      },
    },
    async () => ({ now: Math.floor(clock() / 1000) }),
  );

  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['operations'], response: { 200: statusSchema } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { schema: { summary: 'Readiness: the database answers and the broker (when present) is ready', tags: ['operations'], response: responses({ 200: statusSchema }, [503]) } },
    async () => {
      if (!(await registry.ping())) throw new ApiError('not_ready', 'the database is not available');
      if (brokerReady !== null && !brokerReady()) throw new ApiError('not_ready', 'the broker is not ready');
      return { status: 'ready' };
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)', tags: ['operations'] } }, async (_request, reply) => {
    return reply.type(metrics.contentType).send(await metrics.metrics());
  });

  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

/** `GET /v1/audit` (admin): who did what, and refused connects with their internal reason. */
export function adminOperationRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry } = deps;
  app.get<{ Querystring: { deviceId?: string; limit?: string; cursor?: string } }>(
    '/v1/audit',
    {
      schema: {
        summary: 'The audit log, newest first',
        tags: ['operations'],
        security: ADMIN_SECURITY,
        querystring: {
          type: 'object',
          properties: {
            deviceId: { type: 'string', maxLength: 256, description: 'a device id, or svc:{name} for a service account' },
            limit: { type: 'string', pattern: '^(?:[1-9][0-9]{0,2}|1000)$', description: '1..1000, default 100' },
            cursor: { type: 'string', pattern: '^[1-9][0-9]{0,15}$', description: 'the nextCursor of the previous page' },
          },
          additionalProperties: false,
        },
        response: responses(
          {
            200: {
              type: 'object',
              properties: {
                entries: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      seq: { type: 'integer' },
                      at: { type: 'integer' },
                      actor: { type: 'string' },
                      action: { type: 'string' },
                      target: { type: ['string', 'null'] },
                      detail: jsonObjectSchema,
                    },
                    required: ['seq', 'at', 'actor', 'action', 'target', 'detail'],
                  },
                },
                nextCursor: { type: ['string', 'null'] },
              },
              required: ['entries', 'nextCursor'],
            },
          },
          [400, 401, 429],
        ),
      },
    },
    async (request) => {
      const q = request.query;
      const target = q.deviceId ?? null;
      if (target !== null && !isPrincipal(target)) {
        throw new ApiError('invalid_device_id', 'deviceId must be a device id or svc:{name}');
      }
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      const entries = await registry.audit.list({ limit, target, before: q.cursor === undefined ? null : Number(q.cursor) });
      const last = entries.at(-1);
      return { entries, nextCursor: entries.length === limit && last !== undefined ? String(last.seq) : null };
    },
  );
}
