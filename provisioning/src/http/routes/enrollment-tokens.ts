import type { FastifyInstance } from 'fastify';
import { checkIdPattern, MAX_ID_PATTERN_LENGTH } from '../../enrollment/id-pattern.ts';
import { mintEnrollmentToken } from '../../enrollment/enrollment-token.ts';
import { parseTokenPageKey, type JsonObject, type TokenPageKey } from '../../registry/index.ts';
import { ApiError } from '../api-error.ts';
import { decodeCursor, encodeCursor, pageLimit, pageQueryProperties } from '../cursor.ts';
import { readMetadata } from '../device-input.ts';
import { ADMIN_ACTOR, type RouteDeps } from '../route-deps.ts';
import { ADMIN_SECURITY, enrollmentTokenSchema, jsonObjectSchema, pageSchema, responses } from '../schemas.ts';

export const MAX_ENROLLMENT_USES = 100_000;
export const MAX_ENROLLMENT_TTL_SECONDS = 366 * 86_400;

/** api.md §Zero-touch enrollment (admin side): create (secret shown once), list, delete. */
export function enrollmentTokenRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, clock } = deps;

  app.post<{ Body: { uses?: number; ttlSeconds: number; idPattern?: string; metadata?: JsonObject } }>(
    '/v1/enrollment-tokens',
    {
      schema: {
        summary: 'Create an enrollment token; the token is shown only in this response',
        tags: ['enrollment'],
        security: ADMIN_SECURITY,
        body: {
          type: 'object',
          properties: {
            uses: { type: 'integer', minimum: 1, maximum: MAX_ENROLLMENT_USES, default: 1 },
            ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_ENROLLMENT_TTL_SECONDS },
            idPattern: {
              type: 'string',
              minLength: 1,
              maxLength: MAX_ID_PATTERN_LENGTH,
              description: 'a regular expression the whole device id must match; no nested repetition, backreferences or lookaround',
            },
            metadata: { ...jsonObjectSchema, description: 'copied into every device enrolled with this token' },
          },
          required: ['ttlSeconds'],
          additionalProperties: false,
        },
        response: responses(
          {
            201: {
              type: 'object',
              properties: { ...enrollmentTokenSchema.properties, token: { type: 'string', description: 'lket.<tokenId>.<secret>, shown once' } },
              required: [...enrollmentTokenSchema.required, 'token'],
            },
          },
          [400, 401, 413, 415, 429],
        ),
      },
    },
    async (request, reply) => {
      const body = request.body;
      const idPattern = body.idPattern ?? null;
      if (idPattern !== null) {
        const check = checkIdPattern(idPattern);
        if (!check.ok) throw new ApiError('invalid_id_pattern', `idPattern refused: ${check.reason}`);
      }
      const metadata = readMetadata(body.metadata) ?? {};
      const minted = mintEnrollmentToken();
      const record = await registry.enrollment.create(
        {
          tokenId: minted.tokenId,
          secretHash: minted.secretHash,
          uses: body.uses ?? 1,
          expiresAt: clock() + body.ttlSeconds * 1000,
          idPattern,
          metadata,
        },
        ADMIN_ACTOR,
      );
      return reply.code(201).send({ ...record, token: minted.token });
    },
  );

  app.get<{ Querystring: { limit?: string; cursor?: string } }>(
    '/v1/enrollment-tokens',
    {
      schema: {
        summary: 'List enrollment tokens (never their secrets) in creation order, with cursor pagination',
        tags: ['enrollment'],
        security: ADMIN_SECURITY,
        querystring: { type: 'object', properties: pageQueryProperties, additionalProperties: false },
        response: responses({ 200: pageSchema('tokens', enrollmentTokenSchema) }, [400, 401, 429]),
      },
    },
    async (request) => {
      const page = await registry.enrollment.list({ limit: pageLimit(request.query.limit), after: readTokenCursor(request.query.cursor) });
      return { tokens: page.items, nextCursor: page.next === null ? null : encodeCursor(page.next) };
    },
  );

  app.delete<{ Params: { tokenId: string } }>(
    '/v1/enrollment-tokens/:tokenId',
    {
      schema: {
        summary: 'Delete an enrollment token',
        tags: ['enrollment'],
        security: ADMIN_SECURITY,
        params: { type: 'object', properties: { tokenId: { type: 'string' } }, required: ['tokenId'] },
        response: responses({ 204: { type: 'null', description: 'deleted' } }, [401, 404, 429]),
      },
    },
    async (request, reply) => {
      if (!/^[A-Za-z0-9_-]{12}$/.test(request.params.tokenId)) throw new ApiError('enrollment_token_not_found');
      await registry.enrollment.delete(request.params.tokenId, ADMIN_ACTOR);
      return reply.code(204).send();
    },
  );
}

/** The key inside an enrollment-token cursor: `<createdAt>.<tokenId>` (see EnrollmentStore.list). */
function readTokenCursor(cursor: string | undefined): TokenPageKey | null {
  const key = decodeCursor(cursor);
  if (key === null) return null;
  const after = parseTokenPageKey(key);
  if (after === null) throw new ApiError('validation_failed', 'cursor is not valid');
  return after;
}
