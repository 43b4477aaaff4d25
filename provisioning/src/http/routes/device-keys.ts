import type { FastifyInstance } from 'fastify';
import { deviceTopics, filtersOverlap, publicKeyFromSpkiDer } from '@latchkey/device-sdk/protocol';
import { ApiError } from '../api-error.ts';
import { readerOf, type Reader } from '../reader-auth.ts';
import { deviceIdParam, type RouteDeps } from '../route-deps.ts';
import { READER_SECURITY, deviceIdSchema, nullableEpochMs, responses } from '../schemas.ts';

const keySchema = {
  type: 'object',
  properties: {
    kid: { type: 'string' },
    fingerprint: { type: 'string', description: 'SHA-256 of the canonical SPKI DER, lowercase hex' },
    publicKey: { type: 'string', description: 'SPKI PEM' },
    jwk: { type: 'object', properties: { kty: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' }, y: { type: 'string' } }, required: ['kty', 'crv', 'x', 'y'] },
    createdAt: { type: 'integer', description: 'epoch ms: registered' },
    removedAt: { ...nullableEpochMs, description: 'epoch ms: removed from the device; null while registered' },
    expiresAt: nullableEpochMs,
    lastConnectAt: nullableEpochMs,
    lastMessageAt: nullableEpochMs,
    lastUsedAt: nullableEpochMs,
  },
  required: ['kid', 'fingerprint', 'publicKey', 'jwk', 'createdAt', 'removedAt', 'expiresAt', 'lastConnectAt', 'lastMessageAt', 'lastUsedAt'],
} as const;

/** A service account reads the keys of a device whose messages its subscribe ACL could receive. */
function mayRead(reader: Reader, deviceId: string): boolean {
  if (reader.kind === 'admin') return true;
  const all = deviceTopics(deviceId).allFilter;
  return reader.subscribe.some((filter) => filtersOverlap(filter, all));
}

/**
 * api.md §Key history: `GET /v1/devices/{id}/keys`, the credentials a device has had with when each
 * was registered and removed: what a consumer verifies signed messages with (protocol.md
 * §Signed messages). For the admin token, or a service account's API token within its ACL; a
 * device outside it answers 404 like an unknown one.
 */
export function deviceKeyRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry } = deps;
  app.get<{ Params: { id: string } }>(
    '/v1/devices/:id/keys',
    {
      schema: {
        summary: 'The key history of a device: every credential it has had, with when it was registered and removed',
        tags: ['credentials'],
        security: READER_SECURITY,
        params: { type: 'object', properties: { id: deviceIdSchema }, required: ['id'] },
        response: responses(
          { 200: { type: 'object', properties: { deviceId: { type: 'string' }, keys: { type: 'array', items: keySchema } }, required: ['deviceId', 'keys'] } },
          [400, 401, 404, 429],
        ),
      },
    },
    async (request) => {
      const id = deviceIdParam(request.params.id);
      if (!mayRead(readerOf(request), id)) throw new ApiError('device_not_found', 'No such device');
      const keys = (await registry.devices.keyHistory(id)).map((c) => {
        const key = publicKeyFromSpkiDer(c.spkiDer);
        const jwk = key.export({ format: 'jwk' });
        return {
          kid: c.kid,
          fingerprint: c.fingerprint,
          publicKey: key.export({ type: 'spki', format: 'pem' }) as string,
          jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
          createdAt: c.createdAt,
          removedAt: c.removedAt,
          expiresAt: c.expiresAt,
          lastConnectAt: c.lastConnectAt,
          lastMessageAt: c.lastMessageAt,
          lastUsedAt: c.lastUsedAt,
        };
      });
      return { deviceId: id, keys };
    },
  );
}
