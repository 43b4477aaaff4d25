import type { FastifyInstance } from 'fastify';
import { bearerToken, secretMatcher } from './admin-token.ts';
import { ApiError } from './api-error.ts';
import type { FailureLimiter } from './failure-limiter.ts';

/** What presenting a would-be admin token gets. */
export type AdminCheck = 'admitted' | 'refused' | 'throttled';

/**
 * The one check of the admin token, wherever it is presented: the API's `Authorization: Bearer`
 * header and the console's sign-in form (docs/operations.md §Throttles). The token is compared
 * first, in constant time (SHA-256 of both sides, `timingSafeEqual`): a correct token is admitted
 * whatever else came from its address. Only a wrong token counts against the address's admin
 * budget; once that is used up, a wrong token is `throttled` (429) instead of `refused` (401)
 * until the window ends. One budget for both doors, so the console's form is no second one for
 * guessing.
 *
 * @example
 * ```ts
 * const outcome = adminGateOf(app).check(form.token, request.ip); // 'admitted' | 'refused' | 'throttled'
 * ```
 */
export class AdminGate {
  readonly #matches: (candidate: unknown) => boolean;
  readonly #throttle: FailureLimiter;

  constructor(adminToken: string, throttle: FailureLimiter) {
    this.#matches = secretMatcher(adminToken);
    this.#throttle = throttle;
  }

  check(candidate: unknown, address: string): AdminCheck {
    if (this.#matches(candidate)) return 'admitted';
    if (this.#throttle.blocked(address)) return 'throttled';
    this.#throttle.fail(address);
    return 'refused';
  }
}

const gates = new WeakMap<FastifyInstance, AdminGate>();

/** Records the gate of an app `buildApp` made, for code registered on it later (the console). */
export function setAdminGate(app: FastifyInstance, gate: AdminGate): void {
  gates.set(app, gate);
}

/** The admin gate of an app built by `buildApp`: its token and its admin budget. */
export function adminGateOf(app: FastifyInstance): AdminGate {
  const gate = gates.get(app);
  if (gate === undefined) throw new TypeError('adminGateOf needs an app built by buildApp');
  return gate;
}

/**
 * api.md §Conventions: every route registered in `app` (an encapsulated admin scope)
 * requires `Authorization: Bearer <admin token>`, checked by the gate in `onRequest` (before the
 * body is read).
 */
export function requireAdmin(app: FastifyInstance, gate: AdminGate): void {
  app.addHook('onRequest', async (request, reply) => {
    const outcome = gate.check(bearerToken(request.headers.authorization), request.ip);
    if (outcome === 'admitted') return;
    if (outcome === 'throttled') throw new ApiError('rate_limited');
    reply.header('www-authenticate', 'Bearer realm="latchkey-admin"');
    throw new ApiError('unauthorized');
  });
}
