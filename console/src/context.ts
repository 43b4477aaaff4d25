import type { Clock } from '@latchkey/device-sdk/protocol';
import type { DeviceMessagingPort, EventStreams, FleetEventSource } from '@latchkey/provisioning';
import type { Registry } from '@latchkey/provisioning/registry';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminApi } from './api.ts';
import type { ConsoleData } from './data.ts';
import type { SafeHtml } from './html.ts';
import type { ShellAssets } from './layout.ts';
import type { ConsoleSession, Flash, SessionStore } from './session.ts';

/**
 * How the console sees the broker: a structural port handed in by the composition root. The
 * console never imports `@latchkey/broker` (test/architecture.test.ts).
 */
export interface ConsoleBrokerPort {
  /** live authenticated MQTT sessions (devices and service accounts) */
  readonly sessionCount: number;
  /** commands and telemetry reach devices through it */
  readonly messaging: DeviceMessagingPort;
  /** status flips, refusals and registry changes as they are recorded */
  readonly events: FleetEventSource;
}

/** What every console route module gets. */
export interface ConsoleContext {
  readonly data: ConsoleData;
  readonly api: AdminApi;
  readonly clock: Clock;
  readonly assets: ShellAssets;
  readonly sessions: SessionStore;
  readonly broker: ConsoleBrokerPort;
  readonly registry: Registry;
  readonly streams: EventStreams;
  /** the signed-in session of a request that passed the console's guard */
  session(request: FastifyRequest): ConsoleSession;
}

/** Sends a rendered page. */
export function sendHtml(reply: FastifyReply, status: number, body: SafeHtml): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body.text);
}

/** After a change: a message for the next page, and 303 See Other to it. */
export function redirectWithFlash(reply: FastifyReply, session: ConsoleSession, to: string, flash: Flash): FastifyReply {
  session.flash = flash;
  return reply.code(303).header('location', to).send();
}

/** Takes the pending message, if any (it is shown once). */
export function takeFlash(session: ConsoleSession): Flash | null {
  const f = session.flash;
  session.flash = null;
  return f;
}
