import type { FastifyInstance } from 'fastify';
import { parseGcpImport } from '../../import/parse-gcp-import.ts';
import { ApiError } from '../api-error.ts';
import { ADMIN_ACTOR, type RouteDeps } from '../route-deps.ts';
import { ADMIN_SECURITY, responses } from '../schemas.ts';

/** An export of 10,000 devices with RSA certificates and configs is about 15–30 MiB of JSON. */
export const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;

const refusedSchema = {
  type: 'array',
  items: { type: 'object', properties: { id: { type: 'string' }, code: { type: 'string' }, detail: { type: 'string' } }, required: ['id', 'code', 'detail'] },
} as const;

/**
 * `POST /v1/import/gcp` (docs/migrating-from-cloud-iot-core.md §Import): a Cloud IoT Core export as the
 * body, stored all-or-nothing. A refusal of any device is a 400 `import_rejected` naming every refused
 * device in `refused`; a body that is no export at all is `import_malformed`.
 */
export function importRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry } = deps;
  app.post<{ Querystring: { project?: string; location?: string; registry?: string; dryRun?: 'true' | 'false' }; Body: unknown }>(
    '/v1/import/gcp',
    {
      bodyLimit: Math.max(IMPORT_BODY_LIMIT, deps.config.batchBodyLimit),
      schema: {
        summary: 'Import a Cloud IoT Core registry export (gcloud JSON or EMQX records), all or nothing',
        tags: ['import'],
        security: ADMIN_SECURITY,
        querystring: {
          type: 'object',
          properties: {
            project: { type: 'string', minLength: 1, maxLength: 255 },
            location: { type: 'string', minLength: 1, maxLength: 255 },
            registry: { type: 'string', minLength: 1, maxLength: 255 },
            dryRun: { type: 'string', enum: ['true', 'false'], description: 'true: check everything, store nothing' },
          },
          additionalProperties: false,
        },
        response: responses(
          {
            200: {
              type: 'object',
              properties: { imported: { type: 'integer' }, unchanged: { type: 'integer' }, refused: refusedSchema, dryRun: { type: 'boolean' } },
              required: ['imported', 'unchanged', 'refused', 'dryRun'],
            },
          },
          [400, 401, 413, 415, 429],
        ),
      },
    },
    async (request) => {
      const q = request.query;
      const opts = { ...(q.project === undefined ? {} : { project: q.project }), ...(q.location === undefined ? {} : { location: q.location }), ...(q.registry === undefined ? {} : { registry: q.registry }) };
      const result = await registry.gcp.import(parseGcpImport(request.body, opts), { dryRun: q.dryRun === 'true', actor: ADMIN_ACTOR });
      if (result.refused.length > 0) {
        throw new ApiError('import_rejected', `${result.refused.length} device(s) refused; nothing was stored`, { refused: result.refused });
      }
      return result;
    },
  );
}
