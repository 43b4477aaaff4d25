import type { Clock } from '@latchkey/device-sdk/protocol';
import { adminGateOf, API_ERROR_STATUS, EventStreams, toApiError } from '@latchkey/provisioning';
import type { Registry } from '@latchkey/provisioning/registry';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { adminApi } from './api.ts';
import { assetUrl, loadAssets } from './assets.ts';
import { sendHtml, type ConsoleBrokerPort, type ConsoleContext } from './context.ts';
import { consoleData } from './data.ts';
import { deviceRoutes } from './device-routes.ts';
import { fleetRoutes } from './fleet-routes.ts';
import type { ShellAssets } from './layout.ts';
import { ConsoleError, errorPage } from './pages/error.ts';
import { loginPage } from './pages/login.ts';
import { clearSessionCookie, sameOrigin, SECURITY_HEADERS, sessionCookieOf, setSessionCookie } from './security.ts';
import { csrfMatches, SessionStore, type ConsoleSession, type SessionLimits } from './session.ts';

export interface ConsoleDeps {
  registry: Registry;
  broker: ConsoleBrokerPort;
  /** the admin token operators sign in with (and the console's own API calls carry) */
  adminToken: string;
  clock: Clock;
  sessionLimits?: Partial<SessionLimits>;
  /** live-view streams at once (default 100) */
  maxStreams?: number;
}

/** Form bodies: the biggest is a config or command parameters (64 KiB of JSON) percent-encoded. */
const FORM_BODY_LIMIT = 512 * 1024;
const HTML_TYPE = /^text\/html/;

/**
 * Registers the operators' console on the provisioning app at `/console` (docs/console.md):
 * server-rendered pages, a session cookie in exchange for the admin token, CSRF tokens and a
 * same-origin check on every change, a strict CSP, live updates by Server-Sent Events. Call it
 * before `listen`. `GET /` redirects to the console.
 *
 * @example
 * ```ts
 * await registerConsole(app, { registry, broker: { get sessionCount() { return broker.sessionCount }, messaging, events }, adminToken, clock });
 * ```
 */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<{ sessions: SessionStore }> {
  const sessions = new SessionStore(deps.clock, deps.sessionLimits);
  const streams = new EventStreams({ maxStreams: deps.maxStreams ?? 100 });
  const loaded = loadAssets();
  const assets: ShellAssets = { js: assetUrl(loaded, 'console.js'), css: assetUrl(loaded, 'console.css') };
  const bySession = new WeakMap<FastifyRequest, ConsoleSession>();
  const ctx: ConsoleContext = {
    data: consoleData(deps.registry),
    api: adminApi(app, deps.adminToken),
    clock: deps.clock,
    assets,
    sessions,
    broker: deps.broker,
    registry: deps.registry,
    streams,
    session(request) {
      const s = bySession.get(request);
      if (s === undefined) throw new TypeError('console route without a session guard');
      return s;
    },
  };
  // the API's own admin-token check and per-address budget (docs/operations.md §Throttles)
  const adminGate = adminGateOf(app);
  const started = new WeakMap<FastifyRequest, bigint>();

  app.get('/', async (_request, reply) => reply.code(303).header('location', '/console/').send());

  await app.register(
    async (scope) => {
      scope.addHook('preClose', async () => streams.closeAll());
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      });
      scope.addHook('onRequest', async (request, reply) => {
        started.set(request, process.hrtime.bigint());
        reply.headers(SECURITY_HEADERS);
      });
      scope.addHook('onSend', async (request, reply, payload) => {
        const t0 = started.get(request);
        if (t0 !== undefined) reply.header('server-timing', `app;dur=${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(2)}`);
        if (HTML_TYPE.test(String(reply.getHeader('content-type') ?? ''))) reply.header('cache-control', 'no-store');
        return payload;
      });
      scope.setErrorHandler((error: FastifyError | ConsoleError, request, reply) => {
        const e = error instanceof ConsoleError ? error : consoleErrorOf(error);
        if (e.status >= 500) request.log.error({ err: error }, 'console request failed');
        return sendHtml(reply, e.status, errorPage(e, bySession.get(request) ?? null, assets));
      });
      scope.setNotFoundHandler((request, reply) =>
        sendHtml(reply, 404, errorPage(new ConsoleError('not_found', 'Page not found', 'There is no console page at this address.'), null, assets)),
      );

      // the console's own script and style sheet, named by content hash
      scope.get('/assets/:name', async (request: FastifyRequest<{ Params: { name: string } }>, reply) => {
        const asset = loaded.get(request.params.name);
        if (asset === undefined) throw new ConsoleError('not_found', 'Not found', 'No such asset.');
        reply.header('cache-control', 'public, max-age=31536000, immutable').type(asset.type).header('vary', 'accept-encoding');
        if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(asset.gzip);
        return reply.send(asset.body);
      });

      scope.get('/login', async (request: FastifyRequest<{ Querystring: { next?: string } }>, reply) => {
        if (sessions.get(sessionCookieOf(request)) !== null) return reply.code(303).header('location', '/console/devices').send();
        return sendHtml(reply, 200, loginPage({ next: safeNext(request.query.next), error: null }, assets));
      });

      scope.post('/login', async (request: FastifyRequest<{ Body: Record<string, string | undefined> }>, reply) => {
        if (!sameOrigin(request)) throw crossSite();
        const next = safeNext(request.body?.next);
        const outcome = adminGate.check(request.body?.token, request.ip);
        if (outcome === 'throttled') {
          reply.header('retry-after', '60');
          throw new ConsoleError('rate_limited', 'Too many attempts', 'Too many wrong admin tokens from your address; wait a minute and try again.', { href: '/console/login', text: 'Sign in' });
        }
        if (outcome === 'refused') return sendHtml(reply, 401, loginPage({ next, error: 'That is not the admin token.' }, assets));
        sessions.destroy(sessionCookieOf(request));
        const { id, session } = sessions.create();
        setSessionCookie(reply, request, id, sessions.maxAgeSeconds(session));
        request.log.info({ component: 'console' }, 'console sign-in');
        return reply.code(303).header('location', next).send();
      });

      // everything else needs a session; every change also the same origin and the CSRF token
      await scope.register(async (authed) => {
        authed.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
          const change = request.method !== 'GET' && request.method !== 'HEAD';
          if (change && !sameOrigin(request)) throw crossSite();
          const session = sessions.get(sessionCookieOf(request));
          if (session === null) {
            if (!change && request.routeOptions.url !== '/console/events') {
              return reply.code(303).header('location', `/console/login?next=${encodeURIComponent(request.url)}`).send();
            }
            throw new ConsoleError('session_ended', 'Signed out', 'Your session has ended (signed out, idle or too old). Sign in again.', { href: '/console/login', text: 'Sign in' });
          }
          if (change && !csrfMatches(session, (request.body as Record<string, unknown> | undefined)?._csrf)) {
            throw new ConsoleError('csrf_token_invalid', 'Refused: security token missing', 'The form did not carry this session’s security token (it may be from an older session). Reload the page and try again.');
          }
          bySession.set(request, session);
        });
        authed.post('/logout', async (request, reply) => {
          sessions.destroy(sessionCookieOf(request));
          clearSessionCookie(reply, request);
          return reply.code(303).header('location', '/console/login').send();
        });
        fleetRoutes(authed, ctx);
        deviceRoutes(authed, ctx);
      });
    },
    { prefix: '/console' },
  );
  return { sessions };
}

const crossSite = () =>
  new ConsoleError('cross_site_request', 'Refused: cross-site request', 'This change did not come from a latchkey console page, so it was refused.');

/** Where to go after sign-in: only a console path of this server. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/console\/[A-Za-z0-9._~\-/?&=%]*$/.test(next) && !next.startsWith('/console//') ? next : '/console/devices';
}

/**
 * Anything else thrown on a console route — fastify's own refusals (body too large, bad content
 * type, bad URL) or a failure — as a console page, with the code the HTTP API's one mapping
 * (toApiError) gives it; a failure's cause goes to the log, never to the page.
 */
function consoleErrorOf(error: unknown): ConsoleError {
  const { code } = toApiError(error);
  if (code === 'payload_too_large') return new ConsoleError(code, 'Too large', 'The form is larger than the console accepts.');
  if (code === 'unsupported_media_type') return new ConsoleError(code, 'Unsupported form', 'The console accepts only HTML form posts.');
  if (API_ERROR_STATUS[code] < 500) return new ConsoleError(code, 'Bad request', 'The request could not be read.');
  return new ConsoleError('internal_error', 'Something went wrong', 'The console failed to answer; the server log has the cause. Try again.');
}
