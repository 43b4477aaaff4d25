import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { configMessage, deviceTopics } from '@latchkey/device-sdk/protocol';
import { jsonDepthExceeds } from '../../json-depth.ts';
import type { JsonObject } from '../../registry/index.ts';
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
}

function jsonWithin(value: JsonObject, what: string): string {
  const json = JSON.stringify(value);
  if (Buffer.byteLength(json) > MAX_MESSAGE_JSON_BYTES) {
    throw new ApiError('validation_failed', `${what} must serialize to at most ${MAX_MESSAGE_JSON_BYTES} bytes`);
  }
  return json;
}

/** protocol.md §Topics: a reply is `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`. */
function readReply(commandId: string, payload: Buffer): CommandResult {
  try {
    const text = payload.toString('utf8');
    // returned in the HTTP answer: a reply nested deeper than the API's bodies is malformed
    const r = (jsonDepthExceeds(text) ? null : JSON.parse(text)) as unknown;
    if (r !== null && typeof r === 'object' && !Array.isArray(r) && typeof (r as { ok?: unknown }).ok === 'boolean') {
      const reply = r as { ok: boolean; result?: unknown; error?: unknown };
      return reply.ok
        ? { id: commandId, ok: true, result: reply.result ?? null }
        : { id: commandId, ok: false, error: typeof reply.error === 'string' ? reply.error.slice(0, 1024) : 'error' };
    }
  } catch {
    // fall through
  }
  return { id: commandId, ok: false, error: 'the device sent a malformed reply' };
}

/**
 * Sends one command and waits for its reply: subscribe to `devices/{id}/replies/{commandId}`
 * first, then publish QoS 1 `{"id","params"}` on `devices/{id}/commands/{name}`.
 */
async function sendCommand(
  messaging: DeviceMessagingPort,
  o: { deviceId: string; name: string; params: JsonObject; timeoutMs: number },
): Promise<CommandResult> {
  const commandId = randomUUID();
  const topics = deviceTopics(o.deviceId);
  let unsubscribe = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    const reply = new Promise<CommandResult>((resolve) => {
      unsubscribe = messaging.subscribe(topics.reply(commandId), (_topic, payload) =>
        resolve(readReply(commandId, payload)),
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

/** api.md §Devices: commands, config and state, reaching devices through the broker. */
export function deviceMessagingRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry, messaging, config } = deps;
  const params = { type: 'object', properties: { id: deviceIdSchema }, required: ['id'] } as const;

  app.post<{ Params: { id: string }; Body: { name: string; params?: JsonObject; timeoutMs?: number } }>(
    '/v1/devices/:id/commands',
    {
      schema: {
        summary: 'Send a command and wait for the device to reply',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params,
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', pattern: COMMAND_NAME },
            params: jsonObjectSchema,
            timeoutMs: { type: 'integer', minimum: 100, maximum: config.maxCommandTimeoutMs, description: `default ${config.commandTimeoutMs}` },
          },
          required: ['name'],
          additionalProperties: false,
        },
        response: responses(
          {
            200: {
              type: 'object',
              properties: { id: { type: 'string' }, ok: { type: 'boolean' }, result: {}, error: { type: 'string' } },
              required: ['id', 'ok'],
            },
          },
          [400, 401, 404, 409, 413, 415, 429, 504],
        ),
      },
    },
    async (request) => {
      const deviceId = deviceIdParam(request.params.id);
      const commandParams = request.body.params ?? {};
      jsonWithin(commandParams, 'params');
      if (!(await registry.devices.exists(deviceId))) throw new ApiError('device_not_found', 'no such device');
      if (messaging === null || !(await messaging.isOnline(deviceId))) throw new ApiError('device_offline', 'the device has no live session');
      await registry.audit.record({ actor: ADMIN_ACTOR, action: 'command.send', target: deviceId, detail: { name: request.body.name } });
      return sendCommand(messaging, {
        deviceId,
        name: request.body.name,
        params: commandParams,
        timeoutMs: request.body.timeoutMs ?? config.commandTimeoutMs,
      });
    },
  );

  app.put<{ Params: { id: string }; Body: { config: JsonObject; ifVersion?: number } }>(
    '/v1/devices/:id/config',
    {
      schema: {
        summary: 'Store a new config version and deliver it retained on devices/{id}/config',
        tags: ['devices'],
        security: ADMIN_SECURITY,
        params,
        body: {
          type: 'object',
          properties: { config: jsonObjectSchema, ifVersion: { type: 'integer', minimum: 0 } },
          required: ['config'],
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
      jsonWithin(request.body.config, 'config');
      const version = await registry.configState.setConfig(deviceId, request.body.config, request.body.ifVersion, ADMIN_ACTOR);
      let published = false;
      if (messaging !== null) {
        const payload = Buffer.from(configMessage(version, request.body.config));
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
