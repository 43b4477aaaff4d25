import type { FastifyInstance } from 'fastify';
import { ApiError } from '../api-error.ts';
import { readExpiresAt, readPublicKey } from '../device-input.ts';
import { ADMIN_ACTOR, deviceIdParam, type RouteDeps } from '../route-deps.ts';
import { ADMIN_SECURITY, credentialSchema, deviceIdSchema, expiresAtInputSchema, publicKeySchema, responses } from '../schemas.ts';

const KID = /^[A-Za-z0-9_-]{1,64}$/;

/** api.md §Devices: add a credential (≤ 3, protocol.md §Keys) and remove one. */
export function credentialRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, clock } = deps;

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

  app.delete<{ Params: { id: string; kid: string } }>(
    '/v1/devices/:id/credentials/:kid',
    {
      schema: {
        summary: 'Remove a credential; closes the sessions that used it',
        tags: ['credentials'],
        security: ADMIN_SECURITY,
        params: { type: 'object', properties: { id: deviceIdSchema, kid: { type: 'string' } }, required: ['id', 'kid'] },
        response: responses({ 204: { type: 'null', description: 'removed' } }, [400, 401, 404, 429]),
      },
    },
    async (request, reply) => {
      const id = deviceIdParam(request.params.id);
      if (!KID.test(request.params.kid)) throw new ApiError('credential_not_found', 'no such credential');
      await registry.devices.removeCredential(id, request.params.kid, ADMIN_ACTOR);
      return reply.code(204).send();
    },
  );
}
