import type { FastifyInstance } from 'fastify';
import { assertServiceName, isValidTopicFilter } from '@latchkey/device-sdk/protocol';
import type { ServiceAcl } from '../../registry/index.ts';
import { ApiError } from '../api-error.ts';
import { readExpiresAt, readPublicKey } from '../device-input.ts';
import { ADMIN_ACTOR, type RouteDeps } from '../route-deps.ts';
import { aclSchema, ADMIN_SECURITY, expiresAtInputSchema, publicKeySchema, responses, serviceNameSchema, serviceSchema } from '../schemas.ts';

/** protocol.md §Service accounts: every ACL entry is a valid MQTT topic filter [MQTT-4.7.1]. */
function readAcl(acl: ServiceAcl): ServiceAcl {
  for (const [list, filters] of [['publish', acl.publish], ['subscribe', acl.subscribe]] as const) {
    filters.forEach((f, i) => {
      if (!isValidTopicFilter(f)) throw new ApiError('invalid_topic_filter', `acl.${list}[${i}] is not a valid MQTT topic filter`);
    });
  }
  return { publish: [...new Set(acl.publish)], subscribe: [...new Set(acl.subscribe)] };
}

/** api.md §Service accounts. */
export function serviceRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, clock } = deps;
  const nameParams = { type: 'object', properties: { name: serviceNameSchema }, required: ['name'] } as const;

  app.post<{ Body: { name: string; publicKey: unknown; expiresAt?: unknown; acl: ServiceAcl } }>(
    '/v1/services',
    {
      schema: {
        summary: 'Register a service account (client id svc:{name}) with a key and a topic ACL',
        tags: ['services'],
        security: ADMIN_SECURITY,
        body: {
          type: 'object',
          properties: { name: serviceNameSchema, publicKey: publicKeySchema, expiresAt: expiresAtInputSchema, acl: aclSchema },
          required: ['name', 'publicKey', 'acl'],
          additionalProperties: false,
        },
        response: responses({ 201: serviceSchema }, [400, 401, 409, 413, 415, 429]),
      },
    },
    async (request, reply) => {
      const now = clock();
      const name = assertServiceName(request.body.name);
      const key = readPublicKey(request.body.publicKey, now);
      const expiresAt = readExpiresAt(request.body.expiresAt, now);
      const acl = readAcl(request.body.acl);
      return reply.code(201).send(await registry.services.create({ name, key, expiresAt: expiresAt ?? null, acl }, ADMIN_ACTOR));
    },
  );

  app.get(
    '/v1/services',
    {
      schema: {
        summary: 'List service accounts',
        tags: ['services'],
        security: ADMIN_SECURITY,
        response: responses(
          { 200: { type: 'object', properties: { services: { type: 'array', items: serviceSchema } }, required: ['services'] } },
          [401, 429],
        ),
      },
    },
    async () => ({ services: await registry.services.list() }),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/services/:name',
    {
      schema: {
        summary: 'Get a service account',
        tags: ['services'],
        security: ADMIN_SECURITY,
        params: nameParams,
        response: responses({ 200: serviceSchema }, [400, 401, 404, 429]),
      },
    },
    async (request) => registry.services.get(assertServiceName(request.params.name)),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/services/:name',
    {
      schema: {
        summary: 'Delete a service account; closes its live sessions',
        tags: ['services'],
        security: ADMIN_SECURITY,
        params: nameParams,
        response: responses({ 204: { type: 'null', description: 'deleted' } }, [400, 401, 404, 429]),
      },
    },
    async (request, reply) => {
      await registry.services.delete(assertServiceName(request.params.name), ADMIN_ACTOR);
      return reply.code(204).send();
    },
  );
}
