import type { FastifyInstance } from 'fastify';
import { EventStreams } from '../../events/event-stream.ts';
import type { FleetEventSource } from '../../events/fleet-events.ts';
import { parseFleetStreamQuery, runFleetStream } from '../../events/fleet-stream.ts';
import { ApiError } from '../api-error.ts';
import type { RouteDeps } from '../route-deps.ts';
import { ADMIN_SECURITY, responses } from '../schemas.ts';

/**
 * `GET /v1/events` (docs/api.md §Events): the fleet's live events as Server-Sent Events for
 * admin-token clients — the same stream the console's pages read.
 */
export function eventRoutes(app: FastifyInstance, deps: RouteDeps, events: FleetEventSource, streams: EventStreams): void {
  app.get(
    '/v1/events',
    {
      schema: {
        summary: 'Live fleet events (text/event-stream): status flips, refusals, registry changes, telemetry of chosen devices',
        description:
          'Query: deviceId (repeatable, up to 50) limits the stream to those devices; events is a comma-separated subset of ' +
          'status,fleet,refusal,change,telemetry (default all but telemetry; telemetry needs deviceId). The first event is hello.',
        tags: ['operations'],
        security: ADMIN_SECURITY,
        response: responses({ 200: { description: 'text/event-stream', type: 'string' } }, [400, 401, 429, 503]),
      },
    },
    async (request, reply) => {
      const query = parseFleetStreamQuery(request.query as Record<string, unknown>);
      if ('error' in query) throw new ApiError('validation_failed', query.error);
      if (streams.full) throw new ApiError('not_ready', `at most ${streams.limits.maxStreams} event streams at once`);
      const stream = streams.open(reply)!;
      runFleetStream(stream, query, { events, registry: deps.registry, messaging: deps.messaging, clock: deps.clock });
    },
  );
}
