/**
 * The states of a {@link Session}: exactly one at a time, each holding what only it needs. The
 * session moves between them on what happens (a CONNACK, a lost connection, a refresh falling due,
 * a fatal refusal, `close()`); session.ts names each transition after its event.
 *
 * ```
 * idle ─▶ preparing ─▶ awaiting-connack ─▶ online ─▶ draining ─▶ disconnecting ─▶ preparing (refresh)
 *            │ ▲              │               │          │
 *            ▼ │              ▼ (lost)        ▼ (lost)   ▼ (lost)
 *         backing-off ◀───────┴───────────────┴──────────┘          any ─▶ closed
 * ```
 */

/**
 * Why the session is getting a connection; decides what the next CONNACK 0 counts as.
 * - `first`: no CONNECT was ever sent (the mqtt.js client has not been started);
 * - `retry`: CONNECTs were sent, but no session was ever up;
 * - `outage`: a session was up and was lost (a reconnect);
 * - `refresh`: a session was ended on purpose, to come back with a fresh token before `exp`.
 */
export type ConnectCause = 'first' | 'retry' | 'outage' | 'refresh';

export type SessionState =
  /** built; the first attempt starts at once */
  | { readonly name: 'idle' }
  /** correcting the clock (once, before the first CONNECT) and getting a fresh token */
  | { readonly name: 'preparing'; readonly cause: ConnectCause }
  /** CONNECT sent; `accepted` once CONNACK 0 arrived while mqtt.js still resends what was in flight */
  | { readonly name: 'awaiting-connack'; readonly cause: ConnectCause; accepted: boolean }
  /** a session is up: publishes go out at once */
  | { readonly name: 'online' }
  /** a token refresh: waiting (bounded) for unacknowledged publishes before ending the session */
  | { readonly name: 'draining' }
  /** a token refresh: DISCONNECT under way; the reconnect starts when it is done */
  | { readonly name: 'disconnecting' }
  /** waiting for the backoff timer before the next attempt */
  | { readonly name: 'backing-off'; readonly cause: ConnectCause }
  /** ended by `close()` or a refusal retrying cannot fix; final */
  | { readonly name: 'closed' };

/** Whether a session was up in `state`, as far as the application was told: losing it now is going offline. */
export function reportedOnline(state: SessionState): boolean {
  if (state.name === 'online' || state.name === 'draining') return true;
  // a refresh whose reconnect fails was never reported offline: it is an outage now
  return (state.name === 'preparing' || state.name === 'awaiting-connack') && state.cause === 'refresh';
}

/** The cause of the next attempt once the connection is lost in `state`. */
export function causeAfterLoss(state: SessionState): ConnectCause {
  if (state.name === 'preparing' || state.name === 'awaiting-connack' || state.name === 'backing-off') {
    if (state.cause === 'first') return 'retry';
    return state.cause === 'refresh' ? 'outage' : state.cause;
  }
  return state.name === 'idle' ? 'first' : 'outage';
}

/** Whether the mqtt.js client was ever started (a CONNECT sent) by the time the session is in `state`. */
export function hasDialled(state: SessionState): boolean {
  if (state.name === 'idle') return false;
  return !((state.name === 'preparing' || state.name === 'backing-off') && state.cause === 'first');
}
