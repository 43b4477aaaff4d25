import type { FastifyInstance } from 'fastify';
import { ApiError } from '../api-error.ts';
import { readExpiresAt, readPublicKey } from '../device-input.ts';
import { ADMIN_ACTOR, deviceIdParam, type RouteDeps } from '../route-deps.ts';
import { decodeCursor, encodeCursor, pageLimit, pageQueryProperties } from '../cursor.ts';
import { ADMIN_SECURITY, credentialSchema, deviceIdSchema, expiresAtInputSchema, pageSchema, publicKeySchema, responses } from '../schemas.ts';

const KID = /^[A-Za-z0-9_-]{1,64}$/;

/** The longest `unusedFor`: ten years, in seconds. */
const MAX_UNUSED_FOR_S = 10 * 366 * 86_400;

/** api.md §Devices: add a credential (≤ 3, protocol.md §Keys), remove one, list those unused for a while. */
export function credentialRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, clock, config } = deps;

  app.post<{ Params: { id: string }; Body: { publicKey: unknown; expiresAt?: unknown } }>(
    '/v1/devices/:id/credentials',
    {
      schema: {
        summary: 'Add a public key to a device (at most 3 at once, for rotation)',
        tags: ['credentials'],
        security: ADMIN_SECURITY,
        params: { type: 'object', properties: { id: deviceIdSchema }, required: ['id'] },
        body: {
          type: 'object',
          properties: { publicKey: publicKeySchema, expiresAt: expiresAtInputSchema },
          required: ['publicKey'],
          additionalProperties: false,
        },
        response: responses({ 201: credentialSchema }, [400, 401, 404, 409, 413, 415, 429]),
      },
    },
    async (request, reply) => {
      const id = deviceIdParam(request.params.id);
      const now = clock();
      // an RSA key only for a device imported from Cloud IoT Core (gcp-compat: the native API stays ES256-only)
      const key = readPublicKey(request.body.publicKey, now, { allowRsa: (await registry.gcp.binding(id)) !== null });
      const expiresAt = readExpiresAt(request.body.expiresAt, now);
      return reply.code(201).send(await registry.devices.addCredential(id, key, expiresAt, ADMIN_ACTOR));
    },
  );

  app.delete<{ Params: { id: string; kid: string }; Querystring: { force?: 'true' | 'false' } }>(
    '/v1/devices/:id/credentials/:kid',
    {
      schema: {
        summary: 'Remove a credential (kept in the key history); closes the sessions that used it. One that verified a connect within keyInUseMinutes needs force=true',
        tags: ['credentials'],
        security: ADMIN_SECURITY,
        params: { type: 'object', properties: { id: deviceIdSchema, kid: { type: 'string' } }, required: ['id', 'kid'] },
        querystring: { type: 'object', properties: { force: { type: 'string', enum: ['true', 'false'] } }, additionalProperties: false },
        response: responses({ 204: { type: 'null', description: 'removed' } }, [400, 401, 404, 409, 429]),
      },
    },
    async (request, reply) => {
      const id = deviceIdParam(request.params.id);
      if (!KID.test(request.params.kid)) throw new ApiError('credential_not_found', 'no such credential');
      const inUse = config.keyInUseMinutes === 0 ? {} : { inUseSince: clock() - config.keyInUseMinutes * 60_000 };
      await registry.devices.removeCredential(id, request.params.kid, ADMIN_ACTOR, { ...inUse, force: request.query.force === 'true' });
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { unusedFor: string; limit?: string; cursor?: string } }>(
    '/v1/credentials',
    {
      schema: {
        summary: 'Device credentials not used (connect or signed message) nor registered within the last unusedFor seconds: keys safe to retire',
        tags: ['credentials'],
        security: ADMIN_SECURITY,
        querystring: {
          type: 'object',
          properties: { ...pageQueryProperties, unusedFor: { type: 'string', pattern: '^[0-9]{1,10}$', description: 'seconds' } },
          required: ['unusedFor'],
          additionalProperties: false,
        },
        response: responses(
          { 200: pageSchema('credentials', { ...credentialSchema, properties: { deviceId: { type: 'string' }, ...credentialSchema.properties }, required: ['deviceId', ...credentialSchema.required] }) },
          [400, 401, 429],
        ),
      },
    },
    async (request) => {
      const q = request.query;
      const seconds = Number(q.unusedFor);
      if (seconds > MAX_UNUSED_FOR_S) throw new ApiError('validation_failed', `unusedFor must be at most ${MAX_UNUSED_FOR_S} seconds`);
      const limit = pageLimit(q.limit);
      const cursor = decodeCursor(q.cursor);
      const split = cursor === null ? -1 : cursor.indexOf('\n');
      if (cursor !== null && split < 0) throw new ApiError('validation_failed', 'cursor is not valid');
      const after = cursor === null ? undefined : { deviceId: cursor.slice(0, split), kid: cursor.slice(split + 1) };
      const items = await registry.devices.unusedCredentials(clock() - seconds * 1000, { limit: limit + 1, ...(after === undefined ? {} : { after }) });
      const page = items.slice(0, limit);
      const last = page[page.length - 1];
      return { credentials: page, nextCursor: items.length > limit && last !== undefined ? encodeCursor(`${last.deviceId}\n${last.kid}`) : null };
    },
  );
}
