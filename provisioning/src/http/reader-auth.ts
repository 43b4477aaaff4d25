import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  MAX_API_TOKEN_LIFETIME,
  apiAudience,
  decodeSegments,
  parsePrincipal,
  publicKeyFromSpkiDer,
  verifyToken,
  type Clock,
} from '@latchkey/device-sdk/protocol';
import type { Registry } from '../registry/index.ts';
import { bearerToken, secretMatcher } from './admin-token.ts';
import { ApiError } from './api-error.ts';
import type { FailureLimiter } from './failure-limiter.ts';

/** Who is reading: the admin (everything), or a service account (what its subscribe ACL could receive). */
export type Reader = { kind: 'admin' } | { kind: 'service'; principal: string; subscribe: readonly string[] };

const readers = new WeakMap<FastifyRequest, Reader>();

/** The reader `requireReader` authenticated for this request. */
export function readerOf(request: FastifyRequest): Reader {
  const reader = readers.get(request);
  if (reader === undefined) throw new TypeError('readerOf: the route is not behind requireReader');
  return reader;
}

/**
 * A service account's API token (protocol.md §Service-account API tokens): every connect-token
 * rule of the protocol core, with `aud` = `<audience>:api` and `exp − iat` ≤ 300 s, verified with
 * the account's registered keys. `sub` is read before the signature only to find those keys.
 * Returns the account, or null for any token it refuses.
 */
export async function verifyServiceToken(token: string, registry: Registry, rules: { audience: string; clockTolerance: number }, now: number): Promise<Reader | null> {
  try {
    const sub = (JSON.parse(decodeSegments(token).payload.toString('utf8')) as { sub?: unknown }).sub;
    if (typeof sub !== 'string' || parsePrincipal(sub)?.kind !== 'service') return null;
    const record = await registry.findPrincipal(sub);
    if (record === null || record.kind !== 'service') return null;
    verifyToken(token, {
      audience: apiAudience(rules.audience),
      maxTokenLifetime: MAX_API_TOKEN_LIFETIME,
      clockTolerance: rules.clockTolerance,
      requireJti: false,
      now,
      principal: sub,
      resolveCredentials: () => record.credentials.map((c) => ({ kid: c.kid, key: publicKeyFromSpkiDer(c.spkiDer), expiresAt: c.expiresAt })),
    });
    return { kind: 'service', principal: sub, subscribe: record.acl?.subscribe ?? [] };
  } catch {
    return null;
  }
}

/**
 * The read-only routes registered in `app` accept the admin token, or a service account's API
 * token. Like `requireAdmin`, the credential is checked first, in `onRequest`; only refusals count
 * against the address's budget (shared with wrong admin tokens), and a valid one is never throttled.
 */
export function requireReader(app: FastifyInstance, o: { adminToken: string; throttle: FailureLimiter; registry: Registry; rules: { audience: string; clockTolerance: number }; clock: Clock }): void {
  // the admin token compared without counting (a service account's token is no failed admin token); refusals count below
  const matchesAdmin = secretMatcher(o.adminToken);
  const isAdmin = (authorization: string | undefined) => matchesAdmin(bearerToken(authorization));
  app.addHook('onRequest', async (request, reply) => {
    const authorization = request.headers.authorization;
    if (isAdmin(authorization)) {
      readers.set(request, { kind: 'admin' });
      return;
    }
    const token = bearerToken(authorization);
    const service = token === null ? null : await verifyServiceToken(token, o.registry, o.rules, o.clock());
    if (service !== null) {
      readers.set(request, service);
      return;
    }
    if (o.throttle.blocked(request.ip)) throw new ApiError('rate_limited');
    o.throttle.fail(request.ip);
    reply.header('www-authenticate', 'Bearer realm="latchkey"');
    throw new ApiError('unauthorized');
  });
}
