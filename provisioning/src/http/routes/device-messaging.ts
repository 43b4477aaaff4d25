import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { configMessage, deviceOfPublishTopic, deviceTopics, publicKeyFromSpkiDer, verifySignedMessage, type Clock } from '@latchkey/device-sdk/protocol';
import { jsonDepthExceeds } from '../../json-depth.ts';
import type { JsonObject, Registry } from '../../registry/index.ts';
import { ApiError } from '../api-error.ts';
import type { DeviceMessagingPort } from '../messaging-port.ts';
import { ADMIN_ACTOR, deviceIdParam, type RouteDeps } from '../route-deps.ts';
import { ADMIN_SECURITY, deviceIdSchema, jsonObjectSchema, responses } from '../schemas.ts';

/** A command name is one topic level (protocol.md §Topics `devices/{id}/commands/{name}`). */
const COMMAND_NAME = '^[A-Za-z0-9._-]{1,64}$';
/** Command params and configs travel over MQTT: keep them well under the 256 KiB packet limit. */
export const MAX_MESSAGE_JSON_BYTES = 64 * 1024;

export interface CommandResult {
  id: string;
  ok: boolean;
  result?: unknown;
  error?: string;
  /** the reply was a signed message that verified with the device's keys (protocol.md §Signed messages) */
  signed: boolean;
}

/** A signed reply's verified body, or null (not a signed message, or one that does not verify). */
type UnwrapSigned = (topic: string, payload: Buffer) => Promise<Buffer | null>;

/** Verifies a signed reply with the device's current keys from the registry (protocol.md §Signed messages). */
export function signedReplies(registry: Registry, rules: { audience: string; clockTolerance: number }, clock: Clock): UnwrapSigned {
  return async (topic, payload) => {
    const deviceId = deviceOfPublishTopic(topic);
    const record = deviceId === null ? null : await registry.findPrincipal(deviceId);
    const credentials = record === null || record.kind !== 'device' ? null : record.credentials.map((c) => ({ kid: c.kid, key: publicKeyFromSpkiDer(c.spkiDer), expiresAt: c.expiresAt }));
    try {
      return verifySignedMessage(payload, {
        topic,
        audience: rules.audience,
        clockTolerance: rules.clockTolerance,
        now: clock(),
        resolveCredentials: (id) => (id === deviceId ? credentials : null),
      }).payload;
    } catch {
      return null;
    }
  };
}

function jsonWithin(value: JsonObject, what: string): string {
  const json = JSON.stringify(value);
  if (Buffer.byteLength(json) > MAX_MESSAGE_JSON_BYTES) {
    throw new ApiError('validation_failed', `${what} must serialize to at most ${MAX_MESSAGE_JSON_BYTES} bytes`);
  }
  return json;
}

/**
 * protocol.md §Topics: a reply is `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`, or a
 * signed message of it (§Signed messages) that verifies with the device's keys.
 */
async function readReply(commandId: string, topic: string, payload: Buffer, unwrapSigned: UnwrapSigned): Promise<CommandResult> {
  const plain = parseReply(payload);
  if (plain !== null) return { id: commandId, ...plain, signed: false };
  const body = await unwrapSigned(topic, payload).catch(() => null);
  const signed = body === null ? null : parseReply(body);
  if (signed !== null) return { id: commandId, ...signed, signed: true };
  return { id: commandId, ok: false, error: 'the device sent a malformed reply', signed: false };
}

function parseReply(payload: Buffer): { ok: boolean; result?: unknown; error?: string } | null {
  try {
    const text = payload.toString('utf8');
    // returned in the HTTP answer: a reply nested deeper than the API's bodies is malformed
    const r = (jsonDepthExceeds(text) ? null : JSON.parse(text)) as unknown;
    if (r !== null && typeof r === 'object' && !Array.isArray(r) && typeof (r as { ok?: unknown }).ok === 'boolean') {
      const reply = r as { ok: boolean; result?: unknown; error?: unknown };
      return reply.ok ? { ok: true, result: reply.result ?? null } : { ok: false, error: typeof reply.error === 'string' ? reply.error.slice(0, 1024) : 'error' };
    }
  } catch {
    // not JSON
  }
  return null;
}

/**
 * Sends one command and waits for its reply: subscribe to `devices/{id}/replies/{commandId}`
 * first, then publish QoS 1 `{"id","params"}` on `devices/{id}/commands/{name}`.
 */
async function sendCommand(
  messaging: DeviceMessagingPort,
  o: { deviceId: string; name: string; params: JsonObject; timeoutMs: number; unwrapSigned: UnwrapSigned },
): Promise<CommandResult> {
  const commandId = randomUUID();
  const topics = deviceTopics(o.deviceId);
  let unsubscribe = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    const reply = new Promise<CommandResult>((resolve) => {
      unsubscribe = messaging.subscribe(topics.reply(commandId), (topic, payload) =>
        resolve(readReply(commandId, topic, payload, o.unwrapSigned)),
      );
    });
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), o.timeoutMs);
    });
    const payload = Buffer.from(JSON.stringify({ id: commandId, params: o.params }));
    await messaging.publish(topics.command(o.name), payload, { qos: 1, retain: false });
    const result = await Promise.race([reply, timeout]);
    if (result === null) throw new ApiError('command_timeout', `no reply within ${o.timeoutMs} ms`);
    return result;
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
}

/** A Cloud IoT Core command subfolder: topic levels of command-name characters (protocol.md §Cloud IoT Core commands). */
const GCP_SUBFOLDER = '^[A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,7}$';
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * protocol.md §Cloud IoT Core commands (Cloud IoT Core's `sendCommandToDevice`): the bytes of `binaryData`
 * (base64, either alphabet), or of `data` (a string as its UTF-8 bytes, any other JSON value as its
 * JSON text), on `/devices/{id}/commands[/{subfolder}]`; 200 once the device PUBACKed it.
 */
async function sendGcpCommandRoute(
  deps: RouteDeps,
  deviceId: string,
  body: { subfolder?: string; data?: unknown; binaryData?: string; timeoutMs?: number; params?: JsonObject },
  log: { warn(obj: object, msg: string): void },
): Promise<{ id: string; delivered: true }> {
  const { registry, messaging, config } = deps;
  if (body.params !== undefined || (body.data === undefined) === (body.binaryData === undefined)) {
    throw new ApiError('validation_failed', 'a command needs name (native), or exactly one of data and binaryData (Cloud IoT Core)');
  }
  let payload: Buffer;
  if (body.binaryData !== undefined) {
    if (!BASE64.test(body.binaryData)) throw new ApiError('validation_failed', 'binaryData must be base64');
    payload = Buffer.from(body.binaryData.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  } else {
    payload = Buffer.from(typeof body.data === 'string' ? body.data : JSON.stringify(body.data));
  }
  if (payload.byteLength > MAX_MESSAGE_JSON_BYTES) throw new ApiError('validation_failed', `a command carries at most ${MAX_MESSAGE_JSON_BYTES} bytes`);
  if (!(await registry.devices.exists(deviceId))) throw new ApiError('device_not_found', 'no such device');
  if (messaging === null || messaging.sendGcpCommand === undefined || (await registry.gcp.binding(deviceId)) === null) {
    throw new ApiError('validation_failed', 'commands with data or binaryData go to devices imported from Cloud IoT Core, with compatibility mode on');
  }
  await registry.audit.record({ actor: ADMIN_ACTOR, action: 'command.send', target: deviceId, detail: { subfolder: body.subfolder ?? null, bytes: payload.byteLength } });
  const timeoutMs = body.timeoutMs ?? config.commandTimeoutMs;
  const outcome = await messaging.sendGcpCommand(deviceId, body.subfolder, payload, timeoutMs);
  if (outcome === 'offline') throw new ApiError('device_offline', 'the device has no live session subscribed to its commands');
  if (outcome === 'timeout') {
    log.warn({ deviceId }, 'Cloud IoT Core command not acknowledged in time');
    throw new ApiError('command_timeout', `no PUBACK within ${timeoutMs} ms`);
  }
  return { id: randomUUID(), delivered: true };
}

/** api.md §Devices: commands, config and state, reaching devices through the broker. */
export function deviceMessagingRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, messaging, config } = deps;
  const params = { type: 'object', properties: { id: deviceIdSchema }, required: ['id'] } as const;
  const unwrapSigned = signedReplies(registry, config, deps.clock);

  app.post<{ Params: { id: string }; Body: { name?: string; params?: JsonObject; timeoutMs?: number; subfolder?: string; data?: unknown; binaryData?: string } }>(
    '/v1/devices/:id/commands',
    {
      schema: {
        summary: 'Send a command and wait for the device to reply (native), or for its PUBACK (Cloud IoT Core)',
        description:
          'Native devices: `{name, params?}`, answered with the reply. A device imported from Cloud IoT Core and connected with its path client id: `{subfolder?, data | binaryData}`, answered `{id, delivered: true}` once PUBACKed (protocol.md §Cloud IoT Core commands).',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params,
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', pattern: COMMAND_NAME },
            params: jsonObjectSchema,
            timeoutMs: { type: 'integer', minimum: 100, maximum: config.maxCommandTimeoutMs, description: `default ${config.commandTimeoutMs}` },
            subfolder: { type: 'string', pattern: GCP_SUBFOLDER },
            data: {},
            binaryData: { type: 'string', maxLength: Math.ceil(MAX_MESSAGE_JSON_BYTES / 3) * 4 + 4 },
          },
          additionalProperties: false,
        },
        response: responses(
          {
            200: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                ok: { type: 'boolean' },
                result: {},
                error: { type: 'string' },
                signed: { type: 'boolean', description: 'the reply was a signed message that verified with the device\'s keys' },
                delivered: { type: 'boolean', description: 'Cloud IoT Core commands: the device PUBACKed it' },
              },
              required: ['id'],
            },
          },
          [400, 401, 404, 409, 413, 415, 429, 504],
        ),
      },
    },
    async (request) => {
      const deviceId = deviceIdParam(request.params.id);
      const body = request.body;
      if (body.name === undefined) return sendGcpCommandRoute(deps, deviceId, body, request.log);
      if (body.subfolder !== undefined || body.data !== undefined || body.binaryData !== undefined) {
        throw new ApiError('validation_failed', 'a command is either {name, params} (native) or {subfolder, data | binaryData} (Cloud IoT Core), not both');
      }
      const commandParams = request.body.params ?? {};
      jsonWithin(commandParams, 'params');
      if (!(await registry.devices.exists(deviceId))) throw new ApiError('device_not_found', 'no such device');
      if (messaging === null || !(await messaging.isOnline(deviceId))) throw new ApiError('device_offline', 'the device has no live session');
      await registry.audit.record({ actor: ADMIN_ACTOR, action: 'command.send', target: deviceId, detail: { name: request.body.name } });
      return sendCommand(messaging, {
        deviceId,
        name: body.name,
        params: commandParams,
        timeoutMs: request.body.timeoutMs ?? config.commandTimeoutMs,
        unwrapSigned,
      });
    },
  );

  app.put<{ Params: { id: string }; Body: { config?: JsonObject; binaryData?: string; ifVersion?: number } }>(
    '/v1/devices/:id/config',
    {
      schema: {
        summary: 'Store a new config version and deliver it retained on devices/{id}/config',
        description:
          '`config` (a JSON object), or for a device imported from Cloud IoT Core `binaryData` (base64): the bytes its Cloud IoT Core session gets (protocol.md §Cloud IoT Core config).',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params,
        body: {
          type: 'object',
          properties: {
            config: jsonObjectSchema,
            binaryData: { type: 'string', maxLength: Math.ceil(MAX_MESSAGE_JSON_BYTES / 3) * 4 + 4 },
            ifVersion: { type: 'integer', minimum: 0 },
          },
          additionalProperties: false,
        },
        response: responses(
          {
            200: {
              type: 'object',
              properties: { version: { type: 'integer' }, published: { type: 'boolean' } },
              required: ['version', 'published'],
            },
          },
          [400, 401, 404, 409, 413, 415, 429],
        ),
      },
    },
    async (request) => {
      const deviceId = deviceIdParam(request.params.id);
      const { binaryData } = request.body;
      if ((request.body.config === undefined) === (binaryData === undefined)) throw new ApiError('validation_failed', 'send exactly one of config and binaryData');
      let config: JsonObject;
      let data: Buffer | undefined;
      if (binaryData !== undefined) {
        if (!BASE64.test(binaryData)) throw new ApiError('validation_failed', 'binaryData must be base64');
        data = Buffer.from(binaryData.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
        if (data.byteLength > MAX_MESSAGE_JSON_BYTES) throw new ApiError('validation_failed', `a config carries at most ${MAX_MESSAGE_JSON_BYTES} bytes`);
        if (!(await registry.devices.exists(deviceId))) throw new ApiError('device_not_found', 'no such device');
        if ((await registry.gcp.binding(deviceId)) === null) throw new ApiError('validation_failed', 'binaryData is for devices imported from Cloud IoT Core; send config');
        // what native clients see of it: the same bytes, as base64 in a JSON object
        config = { binaryData: data.toString('base64') };
      } else {
        config = request.body.config as JsonObject;
        jsonWithin(config, 'config');
      }
      const version = await registry.configState.setConfig(deviceId, config, request.body.ifVersion, ADMIN_ACTOR, data);
      let published = false;
      if (messaging !== null) {
        const payload = Buffer.from(configMessage(version, config));
        try {
          await messaging.publish(deviceTopics(deviceId).config, payload, { qos: 1, retain: true });
          published = true;
        } catch (err) {
          request.log.warn({ err, deviceId, version }, 'config stored but not published');
        }
      }
      return { version, published };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/devices/:id/state',
    {
      schema: {
        summary: 'The last state the device reported on devices/{id}/state',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params,
        response: responses(
          { 200: { type: 'object', properties: { state: {}, reportedAt: { type: ['integer', 'null'] } }, required: ['state', 'reportedAt'] } },
          [400, 401, 404, 429],
        ),
      },
    },
    async (request) => {
      const deviceId = deviceIdParam(request.params.id);
      if (!(await registry.devices.exists(deviceId))) throw new ApiError('device_not_found', 'no such device');
      return (await registry.configState.getState(deviceId)) ?? { state: null, reportedAt: null };
    },
  );
}
