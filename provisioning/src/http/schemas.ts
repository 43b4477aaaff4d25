/**
 * JSON schemas shared by the routes: they validate requests and generate `/v1/openapi.json`
 * (OpenAPI 3.1, so `type: [..., 'null']` is valid). Rules that have a home in the protocol core
 * (device ids, keys, topic filters) are checked there, so the codes are precise; the schema
 * states them for readers.
 */
import { DEVICE_ID_PATTERN, SERVICE_NAME_PATTERN } from '@latchkey/device-sdk/protocol';
import { API_ERROR_CODES } from './api-error.ts';

export const deviceIdSchema = {
  type: 'string',
  description: `device id, ${DEVICE_ID_PATTERN.source} (protocol.md §Device ids); others get 400 invalid_device_id`,
} as const;

export const serviceNameSchema = {
  type: 'string',
  description: `service-account name, ${SERVICE_NAME_PATTERN.source}; others get 400 invalid_service_name`,
} as const;

export const publicKeySchema = {
  description: 'EC P-256 public key: SPKI PEM, X.509 certificate PEM, or a JWK (object or JSON string)',
  anyOf: [
    { type: 'string', minLength: 1, maxLength: 16384 },
    { type: 'object', additionalProperties: true },
  ],
} as const;

export const epochMsSchema = { type: 'integer', minimum: 0, maximum: 8.64e15, description: 'epoch milliseconds' } as const;
/**
 * An expiry as the API accepts it: an RFC 3339 date-time string, or a number of epoch seconds
 * (below 1e11, i.e. before the year 5138) or epoch milliseconds (from 1e11). Always returned as ms.
 */
export const expiresAtInputSchema = {
  anyOf: [
    { type: 'integer', minimum: 0, maximum: 8.64e15 },
    { type: 'string', minLength: 10, maxLength: 40 },
  ],
  description: 'RFC 3339 date-time, epoch seconds (< 1e11) or epoch milliseconds',
} as const;
export const nullableEpochMs = { type: ['integer', 'null'], description: 'epoch milliseconds, or null' } as const;
export const jsonObjectSchema = { type: 'object', additionalProperties: true } as const;

export const credentialSchema = {
  type: 'object',
  properties: {
    kid: { type: 'string' },
    fingerprint: { type: 'string', description: 'SHA-256 of the canonical SPKI DER, lowercase hex' },
    createdAt: { type: 'integer' },
    expiresAt: nullableEpochMs,
    lastConnectAt: { ...nullableEpochMs, description: 'when it last verified a connect (batched: may lag by the broker flush interval, 1 s)' },
    lastMessageAt: { ...nullableEpochMs, description: 'when it last verified a signed message at the broker edge (requireSignedTopics)' },
    lastUsedAt: { ...nullableEpochMs, description: 'the later of lastConnectAt and lastMessageAt; null: never used' },
  },
  required: ['kid', 'fingerprint', 'createdAt', 'expiresAt', 'lastConnectAt', 'lastMessageAt', 'lastUsedAt'],
} as const;

export const deviceSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    blocked: { type: 'boolean' },
    metadata: jsonObjectSchema,
    createdAt: { type: 'integer' },
    credentials: { type: 'array', items: credentialSchema },
    status: {
      type: 'object',
      properties: {
        connected: { type: 'boolean' },
        lastConnectedAt: nullableEpochMs,
        lastDisconnectedAt: nullableEpochMs,
        lastSeenAt: nullableEpochMs,
        lastError: {
          type: ['object', 'null'],
          properties: { code: { type: 'string' }, at: { type: 'integer' } },
        },
      },
      required: ['connected', 'lastConnectedAt', 'lastDisconnectedAt', 'lastSeenAt', 'lastError'],
    },
    config: {
      type: 'object',
      properties: { version: { type: 'integer' }, deviceAckTime: { ...nullableEpochMs, description: 'when a Cloud IoT Core session PUBACKed this version' } },
      required: ['version'],
    },
    gcp: {
      type: ['object', 'null'],
      description: 'the Cloud IoT Core registry the device was imported from (docs/migrating-from-cloud-iot-core.md)',
      properties: { project: { type: 'string' }, location: { type: 'string' }, registry: { type: 'string' }, numId: { type: 'string' } },
    },
  },
  required: ['id', 'blocked', 'metadata', 'createdAt', 'credentials', 'status', 'config'],
} as const;

export const aclSchema = {
  type: 'object',
  properties: {
    publish: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 256 } },
    subscribe: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 256 } },
  },
  required: ['publish', 'subscribe'],
  additionalProperties: false,
} as const;

export const serviceSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    principal: { type: 'string', description: 'the MQTT client id and token `sub`, svc:{name}' },
    acl: aclSchema,
    createdAt: { type: 'integer' },
    credentials: { type: 'array', items: credentialSchema },
  },
  required: ['name', 'principal', 'acl', 'createdAt', 'credentials'],
} as const;

export const enrollmentTokenSchema = {
  type: 'object',
  properties: {
    tokenId: { type: 'string' },
    usesTotal: { type: 'integer' },
    usesLeft: { type: 'integer' },
    expiresAt: { type: 'integer' },
    idPattern: { type: ['string', 'null'] },
    metadata: jsonObjectSchema,
    createdAt: { type: 'integer' },
  },
  required: ['tokenId', 'usesTotal', 'usesLeft', 'expiresAt', 'idPattern', 'metadata', 'createdAt'],
} as const;

/** A page of a paged list: `{<name>: [items], nextCursor}` (docs/api.md §Conventions). */
export function pageSchema(name: string, items: object): object {
  return {
    type: 'object',
    properties: { [name]: { type: 'array', items }, nextCursor: { type: ['string', 'null'], description: 'null on the last page' } },
    required: [name, 'nextCursor'],
  };
}

/** RFC 9457 problem details. */
export const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details (application/problem+json)',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: API_ERROR_CODES },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { index: { type: 'integer' }, code: { type: 'string' }, detail: { type: 'string' } },
        required: ['index', 'code', 'detail'],
      },
    },
    refused: {
      type: 'array',
      description: 'import_rejected: every refused device, by id (docs/migrating-from-cloud-iot-core.md §Refusals)',
      items: {
        type: 'object',
        properties: { id: { type: 'string' }, code: { type: 'string' }, detail: { type: 'string' } },
        required: ['id', 'code', 'detail'],
      },
    },
  },
  required: ['type', 'title', 'status', 'detail', 'code'],
} as const;

/** Response map for a route: its success responses plus every problem status it can answer. */
export function responses(ok: Record<number, unknown>, problems: number[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(ok)) out[status] = schema;
  for (const status of problems) out[String(status)] = { ...problemSchema, description: 'problem details' };
  return out;
}

export const ADMIN_SECURITY = [{ adminToken: [] }];
/** Routes a service account may read with its own API token (protocol.md §Service-account API tokens). */
export const READER_SECURITY: Array<Record<string, string[]>> = [{ adminToken: [] }, { serviceToken: [] }];
