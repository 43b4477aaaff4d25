import {
  CONNACK_FOR,
  ProtocolError,
  checkHeader,
  checkTokenSize,
  canPublish,
  connackFor,
  gcpTokenRules,
  GCP_DIALECT,
  completeTokenVerification,
  decodeSegments,
  findSigner,
  isProtocolError,
  parseClientId,
  parseGcpClientId,
  prepareTokenVerification,
  signatureInvalid,
  type AuthFailureCode,
  type ClientIdentity,
  type Clock,
  type GcpClientId,
  type TokenRules,
  type TopicPrincipal,
  type PreparedToken,
  type VerifiedToken,
  type VerifyTokenOptions,
} from '@latchkey/device-sdk/protocol';
import type { AuthenticateError, Client } from 'aedes';
import { connectingWill, keepStoredSessionOnClose } from '../aedes-internals.ts';
import type { AuthFailureRecord } from '../registry-port.ts';
import type { CacheEntry, CachedPrincipal, CredentialCache } from './credential-cache.ts';
import type { ConnectThrottle } from './failure-throttle.ts';
import type { JtiStore } from './jti-cache.ts';
import { runSteps, type Step } from './run-steps.ts';
import type { SessionPrincipal, SessionTable } from './session-table.ts';
import { VerifiedTokenCache } from './verified-token-cache.ts';
import type { VerifyPool } from './verify-pool.ts';

/** Cloud IoT Core compatibility (protocol.md §Cloud IoT Core compatibility): on when projects are enabled. */
export interface GcpAuthConfig {
  /** the only projects a path client id (and a token's `aud`) may name */
  readonly projects: readonly string[];
  readonly maxTokenLifetime: number;
  /** seconds of skew; the session ends at `exp` + this */
  readonly clockTolerance: number;
  /** the device id imported with this numId, or null (registry; a promise on an asynchronous registry) */
  readonly deviceIdOfNumId: (numId: string) => string | null | Promise<string | null>;
}

export interface AuthenticateDeps {
  readonly rules: TokenRules;
  /** absent or null: path client ids are invalid client ids, as without compatibility mode */
  readonly gcp?: GcpAuthConfig | null;
  readonly clock: Clock;
  readonly credentials: CredentialCache;
  /** Tokens already verified (issue 12); null: every token is verified (always with `requireJti`). */
  readonly verifiedTokens: VerifiedTokenCache | null;
  /**
   * Signature checks off the main thread (issue 12, `verifyThreads`); absent or null: inline. Every
   * rule and step order is the same either way; a thread that ends with the check in flight is CONNACK 3.
   */
  readonly verifyPool?: VerifyPool | null;
  /** A CONNECT whose token was a hit of `verifiedTokens` (metrics). */
  readonly onTokenCacheHit: () => void;
  readonly throttle: ConnectThrottle;
  /** null unless `requireJti` */
  readonly jtis: JtiStore | null;
  readonly sessions: SessionTable;
  /** True while the node cannot serve (its shared store has been unreachable for over 1 s): CONNACK 3. */
  readonly unavailable: () => boolean;
  /** An accepted CONNECT takes over the session of another client with its id on this broker (its will is dropped). */
  readonly supersede: (client: Client) => void;
  /** Clients whose CONNECT carried an empty client id (aedes substitutes a generated one). */
  readonly emptyClientIds: WeakSet<Client>;
  /** The peer address (may cost a system call: read only when needed). */
  readonly remoteAddressOf: (client: Client) => string | null;
  readonly timeoutMs: number;
  /** ms the registry's change feed has been down (0 = up): above `FEED_DOWN_LIMIT_MS` every CONNECT gets 3 */
  readonly feedDownForMs: () => number;
  /** Seconds spent in `verifyToken` (metrics). */
  readonly observeVerify: (seconds: number) => void;
  readonly onAccepted: (principal: SessionPrincipal) => void;
  /**
   * `notice` is false for a repeated throttled attempt (counted, not recorded). `cause` is the
   * error behind an `internal_error` or `auth_timeout`, and for `unknown_principal` what the
   * check against the decoy key said (e.g. `signature_invalid`); null otherwise.
   */
  readonly onRefused: (failure: AuthFailureRecord, notice: boolean, cause: unknown) => void;
}

/** One CONNECT being authenticated; steps fill it in. */
interface ConnectAttempt {
  readonly client: Client;
  /** aedes's callback, called once by `settle` */
  readonly done: AedesDone;
  readonly password: Buffer | undefined;
  /** undefined until first needed */
  remoteAddress: string | null | undefined;
  readonly now: number;
  identity: ClientIdentity | null;
  /** the parsed path of a Cloud IoT Core client id, else null */
  gcp: GcpClientId | null;
  /** the principal's cache entry, once loaded */
  entry: CacheEntry | null;
  record: CachedPrincipal | null;
  token: VerifiedToken | null;
  /** the SHA-256 of the token, when the verified-token cache is on */
  digest: string | null;
  notice: boolean;
  /** for an unknown principal: what the check against the decoy key said (refused as unknown_principal) */
  decoyResult: unknown;
  /** `performance.now()` when the token check began (the verify metric) */
  verifyStarted: number;
  /** the token check reached the credential lookup: from there an unknown principal's refusal is the decoy's */
  looked: boolean;
}

type AedesDone = (error: AuthenticateError | null, success: boolean | null) => void;
type AedesAuthenticate = (client: Client, username: Readonly<string | undefined>, password: Readonly<Buffer | undefined>, done: AedesDone) => void;

/** architecture.md §Library facts: aedes needs `returnCode` on the error for 2, 3, 4 (and maps a bare refusal to 5). */
function connackError(code: AuthFailureCode): AuthenticateError {
  return Object.assign(new Error('connection refused'), { returnCode: connackFor(code) }) as AuthenticateError;
}

const refuse = (code: AuthFailureCode, message: string): never => {
  throw new ProtocolError(code, message);
};

/**
 * A node whose registry change feed has been down longer than this refuses new CONNECTs with
 * CONNACK 3 (server unavailable) until it has resynced: it could have missed a block, a delete or a
 * key removal (issue 11; docs/operations.md §Change feed). The SDK retries a 3 with backoff.
 */
export const FEED_DOWN_LIMIT_MS = 1000;

/** Refusals that are the server's doing, not the client's: never counted by the throttle. */
const SERVER_SIDE: ReadonlySet<AuthFailureCode> = new Set(['internal_error', 'auth_timeout', 'service_unavailable']);

/** A registry failure while loading a principal: the CONNECT is refused as internal_error (CONNACK 3), the cause kept. */
function rethrowAsInternal(err: unknown): never {
  throw new ProtocolError('internal_error', 'the registry could not be read', { cause: err });
}

/**
 * The aedes `authenticate` hook (protocol.md §MQTT CONNECT), as a named list of steps:
 * serving (3: the shared store reachable, the change feed up) → client id (2) → throttle (5, token untouched) →
 * password present and in size (4) → a token this broker verified before (the verified-token cache,
 * issue 12: then straight to blocked) → load the principal (the credential cache; on a miss, after the
 * token's cheap structural checks, one registry read: 3 if it fails) → verifyToken against cached
 * KeyObjects (4) → single-use jti (4) → blocked (5) → will topic allowed (5) → attach. Only a cache
 * miss and a jti shared by several nodes are asynchronous.
 * Calls back exactly once, within `timeoutMs`, never throws; every failure becomes a CONNACK
 * code through CONNACK_FOR, and the internal reason goes only to `onRefused`.
 *
 * @example
 * ```ts
 * const aedes = new Aedes({ authenticate: createAuthenticate(deps) });
 * ```
 */
export function createAuthenticate(deps: AuthenticateDeps): AedesAuthenticate {
  const { rules, credentials, throttle, jtis, sessions } = deps;
  // single-use tokens are never cached: a hit would skip the jti being spent
  const verified = rules.requireJti || deps.verifiedTokens?.enabled !== true ? null : deps.verifiedTokens;
  const toleranceMs = rules.clockTolerance * 1000;
  const gcpConfig = deps.gcp ?? null;
  const pool = deps.verifyPool ?? null;

  /**
   * 3, whoever connects, while this node cannot serve: cut off from its shared store (Redis) for
   * over 1 s (docs/operations.md §Scaling out), or its registry change feed down for more than
   * FEED_DOWN_LIMIT_MS (it could have missed a block, a delete or a key removal).
   */
  const checkServing: Step<ConnectAttempt> = () => {
    if (deps.unavailable()) refuse('service_unavailable', 'the shared session store is unreachable');
    const down = deps.feedDownForMs();
    if (down > FEED_DOWN_LIMIT_MS) throw new ProtocolError('internal_error', 'the registry change feed is down', { cause: new Error(`registry change feed down for ${down} ms`) });
  };

  /** [MQTT-3.1.3-5] + protocol.md §MQTT CONNECT: a device id or `svc:{name}[:{instance}]`, else 2. */
  const checkClientId: Step<ConnectAttempt> = (a) => {
    if (deps.emptyClientIds.has(a.client)) refuse('client_id_invalid', 'client id missing');
    if (gcpConfig !== null && typeof a.client.id === 'string' && a.client.id.startsWith('projects/')) return checkGcpClientId(a, gcpConfig);
    a.identity = parseClientId(a.client.id);
    if (a.identity === null) refuse('client_id_invalid', 'client id is neither a device id nor a service client id');
  };

  /**
   * protocol.md §Cloud IoT Core client ids: the path parses (else 2), names a served project (else 2,
   * `project_not_enabled`), and its `{device}` is a device id or an imported numId. An unknown numId
   * goes on as itself (digits: never a device id), so its token meets the decoy key like any unknown id.
   */
  const checkGcpClientId = (a: ConnectAttempt, gcp: GcpAuthConfig): void => {
    const path = parseGcpClientId(a.client.id);
    if (path === null) refuse('client_id_invalid', 'client id is not a Cloud IoT Core device path');
    a.gcp = path as GcpClientId;
    if (!gcp.projects.includes(a.gcp.project)) refuse('project_not_enabled', 'the client id names a project this broker does not serve');
    // a numId goes on as itself until resolveNumId names its device
    const deviceId = a.gcp.device.kind === 'id' ? a.gcp.device.deviceId : a.gcp.device.numId;
    a.identity = { kind: 'device', principal: deviceId, deviceId };
  };

  /**
   * protocol.md §Cloud IoT Core client ids: a numId names the device imported with it (after the throttle and the
   * size check, so a flood of garbage never reaches the registry). An unknown numId stays itself.
   */
  const resolveNumId: Step<ConnectAttempt> = (a) => {
    const device = a.gcp?.device;
    if (device === undefined || device.kind !== 'numId') return undefined;
    const named = (id: string | null) => {
      const deviceId = id ?? device.numId;
      a.identity = { kind: 'device', principal: deviceId, deviceId };
    };
    const found = (gcpConfig as GcpAuthConfig).deviceIdOfNumId(device.numId);
    if (!(found instanceof Promise)) return named(found);
    return found.then(named, (err: unknown) => {
      throw new ProtocolError('internal_error', 'the registry could not be read', { cause: err });
    });
  };

  /** protocol.md §MQTT CONNECT: a throttled address gets 5 without its token being checked. */
  const checkThrottle: Step<ConnectAttempt> = (a) => {
    const state = throttle.check(() => addressOf(a), a.now);
    if (state === 'open') return;
    a.notice = state === 'throttled_first';
    refuse('throttled', 'too many refused connects from this address');
  };

  /** The password is a Buffer: its size is checked (the protocol core's rule) before anything decodes it. */
  const checkPassword: Step<ConnectAttempt> = (a) => checkTokenSize(a.password);

  /**
   * issue 12: a token byte-identical to one this broker verified, for the same principal, under
   * the same unexpired credential and unchanged since (docs/operations.md §Reconnect storms),
   * needs neither the principal's keys nor a second signature check. A refused token is never
   * cached, so every refusal still gets the full check (constant work, issue 16).
   */
  const checkVerified: Step<ConnectAttempt> = (a) => {
    // Cloud IoT Core tokens (their own audience, lifetime and skew rules) are never cached: always the full check
    if (verified === null || a.gcp !== null) return;
    a.digest = VerifiedTokenCache.digest(a.password as Buffer);
    const hit = verified.get(a.digest, (a.identity as ClientIdentity).principal, a.now);
    if (hit === null) return;
    // (the kind check of `verify` passed when it was cached: the same principal names the same kind)
    a.record = hit.record;
    a.token = hit.token;
    deps.onTokenCacheHit();
  };

  /**
   * The principal's cache entry: a hit is synchronous (the common case: no allocation, no promise).
   * A miss first runs the token's structural checks (base64url, header: what `verifyToken` checks
   * before its lookup), so garbage never reaches the registry, then reads it once.
   */
  const loadPrincipal: Step<ConnectAttempt> = (a) => {
    if (a.token !== null) return undefined; // a hit of the verified-token cache
    const principal = (a.identity as ClientIdentity).principal;
    const hit = credentials.peek(principal);
    if (hit !== undefined) {
      a.entry = hit;
      return undefined;
    }
    checkHeader(decodeSegments(a.password as Buffer).header, a.gcp === null ? undefined : GCP_DIALECT.algorithms);
    return credentials.load(principal).then((entry) => {
      a.entry = entry;
    }, rethrowAsInternal);
  };

  /**
   * protocol.md §The connect token: every rule, by the protocol core. An unknown principal's
   * token is verified against the cache's decoy key (issue 16: the same work as for a known id,
   * so timing does not tell whether an id exists); whatever that check says, it is refused as
   * `unknown_principal` (protocol.md: indistinguishable from a bad signature, CONNACK 4).
   * With a verify pool the signature check alone runs on a thread, between the same steps before
   * and after it (the decoy's too); a thread that ends with it in flight refuses the CONNECT as
   * `internal_error` (CONNACK 3), known id or not.
   */
  const verify: Step<ConnectAttempt> = (a) => {
    if (a.token !== null) return undefined; // a hit of the verified-token cache
    a.verifyStarted = performance.now();
    let opts: VerifyTokenOptions;
    let prepared: PreparedToken;
    let inline: VerifiedToken | null = null;
    try {
      opts = tokenOptions(a);
      prepared = prepareTokenVerification(a.password as Buffer, opts);
      if (pool === null) inline = completeTokenVerification(prepared, findSigner(prepared), opts);
    } catch (err) {
      return verifyFailed(a, err);
    }
    if (inline !== null) return verified_(a, inline);
    const pending = (pool as VerifyPool).findSigner(prepared);
    if (pending === null) return verifyFailed(a, signatureInvalid());
    return pending.then(
      (kid) => {
        let token: VerifiedToken;
        try {
          if (kid === null) throw signatureInvalid();
          token = completeTokenVerification(prepared, kid, opts);
        } catch (err) {
          return verifyFailed(a, err);
        }
        verified_(a, token);
      },
      (err: unknown) => {
        deps.observeVerify((performance.now() - a.verifyStarted) / 1000);
        throw new ProtocolError('internal_error', 'the signature check did not finish on its verify thread', { cause: err });
      },
    );
  };

  /** The options of the protocol core's verifier for this CONNECT: a fixed shape, only the token rules, never the whole broker config. */
  const tokenOptions = (a: ConnectAttempt): VerifyTokenOptions => {
    const r = a.gcp === null ? rules : gcpTokenRules(a.gcp.project, gcpConfig as GcpAuthConfig);
    return {
      audience: r.audience,
      maxTokenLifetime: r.maxTokenLifetime,
      clockTolerance: r.clockTolerance,
      requireJti: r.requireJti,
      dialect: a.gcp === null ? undefined : GCP_DIALECT,
      now: a.now,
      principal: (a.identity as ClientIdentity).principal,
      resolveCredentials: () => {
        const entry = a.entry as CacheEntry;
        a.record = entry.record;
        a.looked = true;
        return entry.credentials;
      },
    };
  };

  /** A refusal from the token check: for an unknown principal, what the decoy said (settle() refuses it as unknown_principal; no second error is built, a stack capture costs µs). */
  const verifyFailed = (a: ConnectAttempt, err: unknown): never => {
    deps.observeVerify((performance.now() - a.verifyStarted) / 1000);
    if (a.looked && a.record === null) a.decoyResult = err;
    throw err;
  };

  /** The token verified: the registry must agree on the kind, then the verified-token cache keeps it. */
  const verified_ = (a: ConnectAttempt, token: VerifiedToken): void => {
    deps.observeVerify((performance.now() - a.verifyStarted) / 1000);
    a.token = token;
    // the registry must agree on the kind the client id names (a device id never names a service)
    if (a.record === null || a.record.kind !== (a.identity as ClientIdentity).kind) refuse('unknown_principal', 'unknown principal');
    const digest = a.digest;
    if (digest !== null && verified !== null) {
      verified.set(digest, { principal: (a.identity as ClientIdentity).principal, record: a.record as CachedPrincipal, token, verifiedAt: a.now, diesAt: token.expiresAtMs + toleranceMs });
    }
  };

  /**
   * protocol.md §Cloud IoT Core client ids: the device was imported with the project, location and
   * registry its path names (EMQX ignored them); a device with no binding cannot use a path. After
   * the signature, like the subject binding, so it tells nothing to a client without the key.
   */
  const checkBinding: Step<ConnectAttempt> = (a) => {
    if (a.gcp === null) return;
    const b = (a.record as CachedPrincipal).gcp;
    if (b === null || b.project !== a.gcp.project || b.location !== a.gcp.location || b.registry !== a.gcp.registry) {
      refuse('binding_mismatch', 'the device was not imported with this project, location and registry');
    }
  };

  /**
   * protocol.md §The connect token: with `requireJti`, a `jti` is accepted once (an unknown
   * principal's never gets here). Asynchronous when the store is shared by several nodes.
   */
  const useJti: Step<ConnectAttempt> = (a) => {
    const token = a.token as VerifiedToken;
    if (jtis === null || token.jti === undefined) return;
    const used = jtis.use((a.identity as ClientIdentity).principal, token.jti, token.expiresAtMs, a.now);
    if (typeof used !== 'boolean') return used.then(refuseReplayed);
    refuseReplayed(used);
  };
  const refuseReplayed = (fresh: boolean): void => {
    if (!fresh) refuse('jti_replayed', 'jti was already used');
  };

  /** protocol.md §MQTT CONNECT: a valid token for a blocked device gets 5. */
  const checkBlocked: Step<ConnectAttempt> = (a) => {
    if ((a.record as CachedPrincipal).blocked) refuse('principal_blocked', 'principal is blocked');
  };

  /** protocol.md §Limits: a will only on a topic the client may publish to, otherwise 5. */
  const checkWill: Step<ConnectAttempt> = (a) => {
    const will = connectingWill(a.client);
    if (will && !canPublish(topicPrincipalOf(a.identity as ClientIdentity, a.record as CachedPrincipal, a.gcp !== null), will.topic)) {
      refuse('will_not_allowed', 'will topic outside the client ACL');
    }
  };

  /** architecture.md §Library facts: attach the verified principal during authenticate (WeakMap<Client, Principal>). */
  const attach: Step<ConnectAttempt> = (a) => {
    const identity = a.identity as ClientIdentity;
    const token = a.token as VerifiedToken;
    const principal: SessionPrincipal = {
      kind: identity.kind,
      principal: identity.principal,
      clientId: a.client.id,
      topics: topicPrincipalOf(identity, a.record as CachedPrincipal, a.gcp !== null),
      kid: token.kid,
      // protocol.md §Cloud IoT Core tokens: a Cloud IoT Core session ends at exp + its own skew
      endsAt: token.expiresAtMs + (a.gcp === null ? rules.clockTolerance : (gcpConfig as GcpAuthConfig).clockTolerance) * 1000,
    };
    sessions.attach(a.client, principal);
    deps.supersede(a.client);
  };

  const steps = [checkServing, checkClientId, checkThrottle, checkPassword, resolveNumId, checkVerified, loadPrincipal, verify, checkBinding, useJti, checkBlocked, checkWill, attach];

  const addressOf = (a: ConnectAttempt): string | null => {
    if (a.remoteAddress === undefined) a.remoteAddress = deps.remoteAddressOf(a.client);
    return a.remoteAddress;
  };

  /** The one callback of every run (shared, not a closure per connect): accept, or refuse with the mapped code. */
  const settle = (err: unknown, a: ConnectAttempt): void => {
    const client = a.client;
    if (err === null) {
      a.done(null, true);
      if (!client.closed) deps.onAccepted(sessions.principalOf(client) as SessionPrincipal);
      return;
    }
    const reason: AuthFailureCode =
      a.decoyResult !== undefined ? 'unknown_principal' : isProtocolError(err) && Object.hasOwn(CONNACK_FOR, err.code) ? (err.code as AuthFailureCode) : 'internal_error';
    // read the peer address before the refusal starts closing the socket
    const remoteAddress = addressOf(a);
    // the client's refusals count against its address; the server's own failures do not (an
    // outage must not throttle the fleet into CONNACK 5, which the SDK treats as fatal)
    if (!SERVER_SIDE.has(reason)) throttle.recordFailure(remoteAddress, a.now);
    // A refused client with another device's id must not disturb that device's session:
    // aedes wipes the QoS 2 store of `client.id` when a clean client closes ([MQTT-3.1.2-6]).
    keepStoredSessionOnClose(client);
    a.done(connackError(reason), null);
    deps.onRefused(
      {
        principal: a.identity?.principal ?? null,
        // an id that did not parse is kept to 64 characters: never a whole token pasted into the wrong field
        // (a Cloud IoT Core path that parsed is kept whole: its project, location and registry are the evidence)
        clientId: typeof client.id !== 'string' ? '' : a.identity === null && a.gcp === null ? client.id.slice(0, 64) : client.id,
        reason,
        remoteAddress,
        at: a.now,
      },
      a.notice,
      reason === 'internal_error' || reason === 'auth_timeout' ? err : reason === 'unknown_principal' ? (a.decoyResult ?? null) : null,
    );
  };

  return function authenticate(client, _username, password, done) {
    let attempt: ConnectAttempt;
    try {
      attempt = {
        client,
        done,
        password: password as Buffer | undefined,
        remoteAddress: undefined,
        now: deps.clock(),
        identity: null,
        gcp: null,
        entry: null,
        record: null,
        token: null,
        digest: null,
        notice: true,
        decoyResult: undefined,
        verifyStarted: 0,
        looked: false,
      };
    } catch (err) {
      done(connackError('internal_error'), null);
      deps.onRefused({ principal: null, clientId: '', reason: 'internal_error', remoteAddress: null, at: Date.now() }, true, err);
      return;
    }
    runSteps(steps, attempt, deps.timeoutMs, settle);
  };
}

/** What the topic rules need to know about a principal (protocol.md §Topics, §Service accounts, §Cloud IoT Core topics). */
export function topicPrincipalOf(identity: ClientIdentity, record: CachedPrincipal, gcp = false): TopicPrincipal {
  if (identity.kind === 'device') return gcp ? { kind: 'device', deviceId: identity.deviceId, dialect: 'gcp' } : { kind: 'device', deviceId: identity.deviceId };
  return { kind: 'service', acl: record.acl ?? { publish: [], subscribe: [] } };
}
