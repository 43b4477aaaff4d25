import { isDeviceId } from '@latchkey/device-sdk/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiRefusal } from './api.ts';
import { redirectWithFlash, sendHtml, takeFlash, type ConsoleContext } from './context.ts';
import { devicePath } from './format.ts';
import { commandResult, confirmPage, DEFAULT_COMMAND_TIMEOUT_MS, devicePage, keyInUsePage, type DeviceForms } from './pages/device.ts';
import { ConsoleError } from './pages/error.ts';

type Form = Record<string, string | undefined>;
type IdRequest = FastifyRequest<{ Params: { id: string }; Body: Form }>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** A JSON object typed into a form, or the reason it is not one. */
export function readJsonObject(text: string, what: string): { value: Record<string, unknown> } | { error: string } {
  if (text.trim() === '') return { value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: `${what} is not valid JSON: ${(e as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { error: `${what} must be a JSON object ({…})` };
  return { value: value as Record<string, unknown> };
}

function idOf(request: IdRequest): string {
  const id = request.params.id;
  if (!isDeviceId(id)) throw new ConsoleError('not_found', 'No such device', 'This is not a device id.', { href: '/console/devices', text: 'All devices' });
  return id;
}

const notFound = (id: string) =>
  new ConsoleError('device_not_found', 'No such device', `No device ${id} is registered (it may have been deleted).`, { href: '/console/devices', text: 'All devices' });

/** The device page and every change made from it (each change through the HTTP API). */
export function deviceRoutes(app: FastifyInstance, ctx: ConsoleContext): void {
  const { api, data } = ctx;

  async function render(request: IdRequest, reply: FastifyReply, status: number, forms: DeviceForms = {}) {
    const id = idOf(request);
    const detail = await data.device(id);
    if (detail === null) throw notFound(id);
    const session = ctx.session(request);
    return sendHtml(reply, status, devicePage(detail, { now: ctx.clock(), forms, session, flash: takeFlash(session) }, ctx.assets));
  }

  app.get('/devices/:id', async (request: IdRequest, reply) => render(request, reply, 200));

  for (const action of ['block', 'delete'] as const) {
    app.get(`/devices/:id/${action}`, async (request: IdRequest, reply) => {
      const id = idOf(request);
      if ((await data.device(id)) === null) throw notFound(id);
      return sendHtml(reply, 200, confirmPage({ id, action, session: ctx.session(request), error: null }, ctx.assets));
    });
  }

  const setBlocked = (blocked: boolean) => async (request: IdRequest, reply: FastifyReply) => {
    const id = idOf(request);
    const r = await api('PATCH', `/v1/devices/${id}`, { blocked });
    if (!r.ok) throw problemPage(r.problem, id);
    const text = blocked ? `${id} is blocked; its live sessions were closed.` : `${id} is unblocked.`;
    return redirectWithFlash(reply, ctx.session(request), devicePath(id), { kind: 'ok', text });
  };
  app.post('/devices/:id/block', setBlocked(true));
  app.post('/devices/:id/unblock', setBlocked(false));

  app.post('/devices/:id/delete', async (request: IdRequest, reply) => {
    const id = idOf(request);
    const session = ctx.session(request);
    if (str(request.body.confirm) !== id) {
      return sendHtml(reply, 400, confirmPage({ id, action: 'delete', session, error: `Type ${id} exactly to delete it.` }, ctx.assets));
    }
    const r = await api('DELETE', `/v1/devices/${id}`);
    if (!r.ok) throw problemPage(r.problem, id);
    return redirectWithFlash(reply, session, '/console/devices', { kind: 'ok', text: `${id} was deleted.` });
  });

  app.post('/devices/:id/credentials', async (request: IdRequest, reply) => {
    const id = idOf(request);
    const publicKey = str(request.body.publicKey).trim();
    const expiresAt = str(request.body.expiresAt).trim();
    // a JWK is sent as the object it is; PEM as text
    const key = publicKey.startsWith('{') ? readJsonObject(publicKey, 'The JWK') : { value: publicKey };
    if ('error' in key) return render(request, reply, 400, { key: { publicKey, expiresAt, error: key.error } });
    const r = await api('POST', `/v1/devices/${id}/credentials`, { publicKey: key.value, ...(expiresAt !== '' ? { expiresAt } : {}) });
    if (!r.ok) {
      if (r.problem.code === 'device_not_found') throw notFound(id);
      return render(request, reply, r.problem.status, { key: { publicKey, expiresAt, error: r.problem.detail } });
    }
    return redirectWithFlash(reply, ctx.session(request), devicePath(id), {
      kind: 'ok',
      text: `Key ${r.body.kid} added, SHA-256 fingerprint ${r.body.fingerprint}.`,
    });
  });

  app.post('/devices/:id/credentials/:kid/remove', async (request: FastifyRequest<{ Params: { id: string; kid: string }; Body: Form }>, reply) => {
    const id = idOf(request as unknown as IdRequest);
    const kid = request.params.kid;
    const force = str(request.body?.force) === 'true';
    const r = await api('DELETE', `/v1/devices/${id}/credentials/${encodeURIComponent(kid)}${force ? '?force=true' : ''}`);
    if (!r.ok && r.problem.code === 'credential_in_use') {
      // issue 15: a key that verified a connect recently is removed only on a second, explicit request
      const detail = await data.device(id);
      const lastConnectAt = detail?.device.credentials.find((c) => c.kid === kid)?.lastConnectAt ?? null;
      return sendHtml(reply, 409, keyInUsePage({ id, kid, lastConnectAt, now: ctx.clock(), session: ctx.session(request) }, ctx.assets));
    }
    if (!r.ok) throw problemPage(r.problem, id);
    return redirectWithFlash(reply, ctx.session(request), devicePath(id), { kind: 'ok', text: `Key ${kid} removed; sessions that used it were closed.` });
  });

  app.post('/devices/:id/config', async (request: IdRequest, reply) => {
    const id = idOf(request);
    const text = str(request.body.config);
    const ifVersion = Number(str(request.body.ifVersion));
    if (!Number.isSafeInteger(ifVersion) || ifVersion < 0) throw new ConsoleError('validation_failed', 'Bad form', 'The config form lost its version; reload the page.');
    const parsed = readJsonObject(text, 'The config');
    if ('error' in parsed) return render(request, reply, 400, { config: { text, ifVersion, error: parsed.error, conflict: false } });
    const r = await api('PUT', `/v1/devices/${id}/config`, { config: parsed.value, ifVersion });
    if (!r.ok) {
      if (r.problem.code === 'device_not_found') throw notFound(id);
      const conflict = r.problem.code === 'config_version_mismatch';
      return render(request, reply, r.problem.status, { config: { text, ifVersion, error: conflict ? null : r.problem.detail, conflict } });
    }
    const delivered = r.body.published ? 'and delivered (retained) to the device' : 'but not published: the broker did not take it';
    return redirectWithFlash(reply, ctx.session(request), devicePath(id), { kind: 'ok', text: `Config version ${r.body.version} saved ${delivered}.` });
  });

  app.post('/devices/:id/commands', async (request: IdRequest, reply) => {
    const id = idOf(request);
    const name = str(request.body.name).trim();
    const paramsText = str(request.body.params);
    const timeoutText = str(request.body.timeoutMs).trim();
    const timeoutMs = timeoutText === '' ? DEFAULT_COMMAND_TIMEOUT_MS : Number(timeoutText);
    const refused = (detail: string) => commandResult(id, { kind: 'refused', code: 'validation_failed', detail });
    const params = readJsonObject(paramsText, 'Parameters');
    let result;
    if ('error' in params) result = refused(params.error);
    else if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 60_000) result = refused('the timeout must be 100 to 60000 ms');
    else {
      const r = await api('POST', `/v1/devices/${id}/commands`, { name, params: params.value, timeoutMs });
      if (!r.ok && r.problem.code === 'device_not_found') throw notFound(id);
      result = r.ok
        ? commandResult(id, { kind: 'reply', ok: r.body.ok, result: r.body.result, error: r.body.error })
        : commandResult(id, { kind: 'refused', code: r.problem.code, detail: r.problem.detail, timeoutMs });
    }
    // the page's script asks for the result panel alone; without script the whole page comes back
    if (request.headers['x-console-fragment'] === 'command-result') return sendHtml(reply, 200, result);
    return render(request, reply, 200, { command: { name, params: paramsText, timeoutMs: timeoutText, result } });
  });
}

/** A refusal of the API where the console has no form to show it in. */
function problemPage(p: ApiRefusal, id: string): ConsoleError {
  if (p.code === 'device_not_found') return notFound(id);
  return new ConsoleError(p.code, 'The change was refused', `${p.detail} (${p.code})`, { href: devicePath(id), text: `Back to ${id}` });
}
