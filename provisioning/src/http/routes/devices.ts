import type { FastifyInstance } from 'fastify';
import { deviceTopics } from '@latchkey/device-sdk/protocol';
import { MAX_BATCH, isRegistryError, type DeviceRecord, type JsonObject, type NewDevice } from '../../registry/index.ts';
import { ApiError, type ProblemItem } from '../api-error.ts';
import { decodeCursor, encodeCursor, pageLimit, pageQueryProperties } from '../cursor.ts';
import { readMetadata, readNewDevice } from '../device-input.ts';
import { toApiError } from '../error-mapping.ts';
import { ADMIN_ACTOR, deviceIdParam, type RouteDeps } from '../route-deps.ts';
import {
  ADMIN_SECURITY,
  deviceIdSchema,
  deviceSchema,
  expiresAtInputSchema,
  jsonObjectSchema,
  pageSchema,
  publicKeySchema,
  responses,
} from '../schemas.ts';

const newDeviceBody = {
  type: 'object',
  properties: { id: deviceIdSchema, publicKey: publicKeySchema, expiresAt: expiresAtInputSchema, metadata: jsonObjectSchema },
  required: ['id', 'publicKey'],
  additionalProperties: false,
} as const;

const idParams = { type: 'object', properties: { id: deviceIdSchema }, required: ['id'] } as const;
const KEY_ERRORS = [400, 401, 409, 413, 415, 429];

/** api.md §Devices: create (single and batch), list, get, PATCH, delete. */
export function deviceRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, clock, messaging } = deps;

  /**
   * docs/api.md `status.connected`: with a broker attached it is the broker's presence (any node of
   * a cluster reads the same, and one node's restart changes nothing for the others' devices);
   * without one, the registry's record of session events.
   */
  const withPresence = async (devices: DeviceRecord[]): Promise<DeviceRecord[]> => {
    if (messaging === null || devices.length === 0) return devices;
    const online = await messaging.onlineAmong(devices.map((d) => d.id));
    return devices.map((d) => ({ ...d, status: { ...d.status, connected: online.has(d.id) } }));
  };

  app.post<{ Body: unknown }>(
    '/v1/devices',
    {
      schema: {
        summary: 'Register a device with its first public key',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        body: newDeviceBody,
        response: responses({ 201: deviceSchema }, KEY_ERRORS),
      },
    },
    async (request, reply) => {
      const device = readNewDevice(request.body, clock());
      return reply.code(201).send(await registry.devices.create(device, ADMIN_ACTOR));
    },
  );

  app.post<{ Body: { devices: unknown[] } }>(
    '/v1/devices::batch',
    {
      bodyLimit: deps.config.batchBodyLimit,
      schema: {
        summary: `Register up to ${MAX_BATCH} devices in one transaction (all-or-nothing)`,
        description: 'Each item is a POST /v1/devices body. A 400 batch_rejected lists every refused item by index in `errors`.',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        body: {
          type: 'object',
          properties: { devices: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: newDeviceBody } },
          required: ['devices'],
          additionalProperties: false,
        },
        response: responses(
          { 201: { type: 'object', properties: { created: { type: 'array', items: { type: 'string' } } }, required: ['created'] } },
          KEY_ERRORS,
        ),
      },
      // Items are judged one by one below, so that every bad item is named, not just the first.
      validatorCompiler: ({ schema }) => batchShapeValidator(schema as { properties: { devices: { maxItems: number } } }),
    },
    async (request, reply) => {
      const now = clock();
      const refused: ProblemItem[] = [];
      const inputs: Array<NewDevice | null> = request.body.devices.map((item, index) => {
        try {
          return readNewDevice(item, now);
        } catch (e) {
          const err = toApiError(e);
          if (err.code === 'internal_error') throw err;
          refused.push({ index, code: err.code, detail: err.message });
          return null;
        }
      });
      try {
        return reply.code(201).send({ created: await registry.devices.createMany(inputs, ADMIN_ACTOR) });
      } catch (e) {
        if (!isRegistryError(e, 'batch_rejected')) throw e;
        const items = [...refused, ...(toApiError(e).items ?? [])].sort((a, b) => a.index - b.index);
        throw new ApiError('batch_rejected', `${items.length} of ${inputs.length} devices refused; nothing was stored`, { items });
      }
    },
  );

  app.get<{ Querystring: { limit?: string; cursor?: string; blocked?: 'true' | 'false' } }>(
    '/v1/devices',
    {
      schema: {
        summary: 'List devices by id, with cursor pagination',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        querystring: {
          type: 'object',
          properties: { ...pageQueryProperties, blocked: { type: 'string', enum: ['true', 'false'] } },
          additionalProperties: false,
        },
        response: responses({ 200: pageSchema('devices', deviceSchema) }, [400, 401, 429]),
      },
    },
    async (request) => {
      const q = request.query;
      const page = await registry.devices.list({
        limit: pageLimit(q.limit),
        after: decodeCursor(q.cursor),
        blocked: q.blocked === undefined ? null : q.blocked === 'true',
      });
      return { devices: await withPresence(page.items), nextCursor: page.next === null ? null : encodeCursor(page.next) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/devices/:id',
    {
      schema: {
        summary: 'Get a device',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params: idParams,
        response: responses({ 200: deviceSchema }, [400, 401, 404, 429]),
      },
    },
    async (request) => (await withPresence([await registry.devices.get(deviceIdParam(request.params.id))]))[0],
  );

  app.patch<{ Params: { id: string }; Body: { blocked?: boolean; metadata?: JsonObject } }>(
    '/v1/devices/:id',
    {
      schema: {
        summary: 'Block/unblock a device or replace its metadata; blocking closes its live sessions',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params: idParams,
        body: {
          type: 'object',
          properties: { blocked: { type: 'boolean' }, metadata: jsonObjectSchema },
          minProperties: 1,
          additionalProperties: false,
        },
        response: responses({ 200: deviceSchema }, [400, 401, 404, 413, 415, 429]),
      },
    },
    async (request) => {
      const id = deviceIdParam(request.params.id);
      const patch: { blocked?: boolean; metadata?: JsonObject } = {};
      if (request.body.blocked !== undefined) patch.blocked = request.body.blocked;
      const metadata = readMetadata(request.body.metadata);
      if (metadata !== undefined) patch.metadata = metadata;
      return (await withPresence([await registry.devices.update(id, patch, ADMIN_ACTOR)]))[0];
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/devices/:id',
    {
      schema: {
        summary: 'Delete a device; closes its live sessions',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params: idParams,
        response: responses({ 204: { type: 'null', description: 'deleted' } }, [400, 401, 404, 429]),
      },
    },
    async (request, reply) => {
      const id = deviceIdParam(request.params.id);
      await registry.devices.delete(id, ADMIN_ACTOR);
      // A device re-created under this id must not receive the old retained config.
      if (messaging !== null) {
        await messaging.publish(deviceTopics(id).config, Buffer.alloc(0), { qos: 1, retain: true }).catch((err: unknown) => {
          request.log.warn({ err, deviceId: id }, 'could not clear the retained config of a deleted device');
        });
      }
      return reply.code(204).send();
    },
  );
}

/**
 * The batch body's outer shape only (`{devices: [...]}` with 1..10,000 items); the items are
 * validated one by one by the handler so the 400 can name each bad one by index.
 */
function batchShapeValidator(schema: { properties: { devices: { maxItems: number } } }) {
  const max = schema.properties.devices.maxItems;
  return (body: unknown) => {
    const ok =
      body !== null &&
      typeof body === 'object' &&
      !Array.isArray(body) &&
      Object.keys(body).length === 1 &&
      Array.isArray((body as { devices?: unknown }).devices) &&
      (body as { devices: unknown[] }).devices.length >= 1 &&
      (body as { devices: unknown[] }).devices.length <= max;
    return ok ? { value: body } : { error: new ApiError('validation_failed', `body must be {"devices": [1..${max} devices]}`) };
  };
}
