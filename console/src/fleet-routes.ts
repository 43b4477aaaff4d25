import { isPrincipal } from '@latchkey/device-sdk/protocol';
import { parseFleetStreamQuery, runFleetStream } from '@latchkey/provisioning';
import { DEVICE_STATUS_FILTERS, parseTokenPageKey, type DeviceStatusFilter, type TokenPageKey } from '@latchkey/provisioning/registry';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { redirectWithFlash, sendHtml, takeFlash, type ConsoleContext } from './context.ts';
import { readJsonObject } from './device-routes.ts';
import { html } from './html.ts';
import { AUDIT_PER_PAGE, auditPage } from './pages/audit.ts';
import { devicesPage, DEVICES_PER_PAGE } from './pages/devices.ts';
import { enrollmentTokensPage, EMPTY_TOKEN_FORM, TOKENS_PER_PAGE, type TokenForm } from './pages/enrollment-tokens.ts';
import { ConsoleError } from './pages/error.ts';
import { failuresSection, healthPage } from './pages/health.ts';
import { refusalWords } from './refusal-words.ts';
import { SECURITY_HEADERS } from './security.ts';

type Query = Record<string, string | string[] | undefined>;
const one = (v: string | string[] | undefined): string => (typeof v === 'string' ? v : '');
/** An id or id prefix: the characters of protocol.md §Device ids. */
const ID_CHARS = /^[A-Za-z0-9._-]{0,64}$/;

const badQuery = (text: string, href: string) => new ConsoleError('validation_failed', 'Bad address', text, { href, text: 'Start over' });

/** The device list, enrollment tokens, the audit log, fleet health and the live event stream. */
export function fleetRoutes(app: FastifyInstance, ctx: ConsoleContext): void {
  const { data, api } = ctx;

  app.get('/', async (_request, reply) => reply.code(303).header('location', '/console/devices').send());

  app.get('/devices', async (request: FastifyRequest<{ Querystring: Query }>, reply) => {
    const q = request.query;
    const status = one(q.status);
    const prefix = one(q.q).trim();
    const after = one(q.after);
    const before = one(q.before);
    if (status !== '' && !(DEVICE_STATUS_FILTERS as readonly string[]).includes(status)) throw badQuery('Unknown status filter.', '/console/devices');
    if (!ID_CHARS.test(prefix)) {
      throw badQuery('An id prefix holds only letters, digits, “.”, “_” and “-” (device ids have no other characters).', '/console/devices');
    }
    if (!ID_CHARS.test(after) || !ID_CHARS.test(before) || (after !== '' && before !== '')) throw badQuery('Bad page link.', '/console/devices');
    const { page, total, connected } = await data.devices({
      limit: DEVICES_PER_PAGE,
      status: status === '' ? null : (status as DeviceStatusFilter),
      prefix,
      after: after === '' ? null : after,
      before: before === '' ? null : before,
    });
    const session = ctx.session(request);
    const view = { status: status === '' ? null : (status as DeviceStatusFilter), prefix, page, total, connected, now: ctx.clock() };
    return sendHtml(reply, 200, devicesPage(view, session, takeFlash(session), ctx.assets));
  });

  const tokensPage = async (request: FastifyRequest, reply: FastifyReply, status: number, form: TokenForm, after: TokenPageKey | null = null) => {
    const session = ctx.session(request);
    const tokens = await data.enrollmentTokens({ limit: TOKENS_PER_PAGE, after });
    return sendHtml(reply, status, enrollmentTokensPage({ tokens, paged: after !== null, form, now: ctx.clock(), session, flash: takeFlash(session) }, ctx.assets));
  };
  app.get('/enrollment-tokens', async (request: FastifyRequest<{ Querystring: Query }>, reply) => {
    const afterText = one(request.query.after);
    const after = afterText === '' ? null : parseTokenPageKey(afterText);
    if (after === null && afterText !== '') throw badQuery('Bad page link.', '/console/enrollment-tokens');
    return tokensPage(request, reply, 200, EMPTY_TOKEN_FORM, after);
  });

  app.post('/enrollment-tokens', async (request: FastifyRequest<{ Body: Record<string, string | undefined> }>, reply) => {
    const b = request.body;
    const form: TokenForm = { hours: (b.hours ?? '').trim(), uses: (b.uses ?? '').trim(), idPattern: (b.idPattern ?? '').trim(), metadata: b.metadata ?? '', error: null };
    const refuse = (field: NonNullable<TokenForm['error']>['field'], text: string) => tokensPage(request, reply, 400, { ...form, error: { field, text } });
    const hours = Number(form.hours);
    const uses = Number(form.uses);
    if (!/^\d{1,4}$/.test(form.hours) || hours < 1 || hours > 8784) return refuse('hours', 'Enter a whole number of hours, 1 to 8784 (366 days).');
    if (!/^\d{1,6}$/.test(form.uses) || uses < 1 || uses > 100_000) return refuse('uses', 'Enter a whole number of uses, 1 to 100000.');
    const metadata = readJsonObject(form.metadata, 'Metadata');
    if ('error' in metadata) return refuse('metadata', metadata.error);
    const r = await api('POST', '/v1/enrollment-tokens', {
      ttlSeconds: hours * 3600,
      uses,
      ...(form.idPattern !== '' ? { idPattern: form.idPattern } : {}),
      ...(Object.keys(metadata.value).length > 0 ? { metadata: metadata.value } : {}),
    });
    if (!r.ok) return refuse(r.problem.code === 'invalid_id_pattern' ? 'idPattern' : 'metadata', r.problem.detail);
    return redirectWithFlash(reply, ctx.session(request), '/console/enrollment-tokens', {
      kind: 'ok',
      text: `Enrollment token ${r.body.tokenId} created: ${uses} use${uses === 1 ? '' : 's'}, valid for ${hours} h.`,
      secret: r.body.token,
    });
  });

  app.post('/enrollment-tokens/:tokenId/delete', async (request: FastifyRequest<{ Params: { tokenId: string } }>, reply) => {
    const tokenId = request.params.tokenId;
    const r = await api('DELETE', `/v1/enrollment-tokens/${encodeURIComponent(tokenId)}`);
    const session = ctx.session(request);
    if (!r.ok) return redirectWithFlash(reply, session, '/console/enrollment-tokens', { kind: 'error', text: `Token ${tokenId} was not deleted: ${r.problem.detail}` });
    return redirectWithFlash(reply, session, '/console/enrollment-tokens', { kind: 'ok', text: `Token ${tokenId} deleted.` });
  });

  app.get('/audit', async (request: FastifyRequest<{ Querystring: Query }>, reply) => {
    const deviceId = one(request.query.deviceId).trim();
    const beforeText = one(request.query.before);
    if (beforeText !== '' && !/^[1-9][0-9]{0,15}$/.test(beforeText)) throw badQuery('Bad page link.', '/console/audit');
    const valid = deviceId === '' || isPrincipal(deviceId);
    const entries = valid
      ? await data.audit({ limit: AUDIT_PER_PAGE, target: deviceId === '' ? null : deviceId, before: beforeText === '' ? null : Number(beforeText) })
      : [];
    const last = entries.at(-1);
    return sendHtml(
      reply,
      valid ? 200 : 400,
      auditPage(
        {
          entries,
          deviceId,
          error: valid ? null : 'Enter a device id (letters, digits, “.”, “_”, “-”) or svc:name.',
          next: entries.length === AUDIT_PER_PAGE && last !== undefined ? last.seq : null,
          now: ctx.clock(),
          session: ctx.session(request),
        },
        ctx.assets,
      ),
    );
  });

  app.get('/health', async (request, reply) => {
    const h = await data.health(ctx.clock());
    return sendHtml(reply, 200, healthPage({ h, sessions: ctx.broker.sessionCount, session: ctx.session(request) }, ctx.assets));
  });

  app.get('/health/failures', async (_request, reply) => sendHtml(reply, 200, html`${failuresSection(await data.health(ctx.clock()))}`));

  app.get('/events', async (request: FastifyRequest<{ Querystring: Query }>, reply) => {
    const query = parseFleetStreamQuery(request.query);
    if ('error' in query) throw new ConsoleError('validation_failed', 'Bad event stream address', query.error);
    if (ctx.streams.full) throw new ConsoleError('not_ready', 'Too many live views', 'Too many pages are receiving live updates; try again later.');
    const stream = ctx.streams.open(reply, { ...SECURITY_HEADERS })!;
    runFleetStream(stream, query, {
      events: ctx.broker.events,
      registry: ctx.registry,
      messaging: ctx.broker.messaging,
      clock: ctx.clock,
      describeRefusal: (reason) => ({ text: refusalWords(reason) }),
    });
  });
}
