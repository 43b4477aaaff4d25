import type { EventEmitter } from 'node:events';
import { DeviceClientError } from '../errors.ts';
import type { SessionEvents } from './session-options.ts';

/**
 * Resolves on a session's first `connect`; rejects with the error its `close` carries (a refusal,
 * `connect_timeout`), or `closed` when it was closed first. `onTimeout` runs after `timeoutMs`
 * (0: never) unless the session settled before; it should end the session with `connect_timeout`.
 *
 * @example
 * ```ts
 * const opened = untilFirstConnect(session, 30_000, () => session.giveUp());
 * ```
 */
export function untilFirstConnect(session: EventEmitter<SessionEvents>, timeoutMs: number, onTimeout: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = timeoutMs > 0 ? setTimeout(onTimeout, timeoutMs) : null;
    const settle = (err: DeviceClientError | undefined) => {
      if (deadline !== null) clearTimeout(deadline);
      session.off('connect', onConnect);
      session.off('close', onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onConnect = () => settle(undefined);
    const onClose = (err: DeviceClientError | undefined) => settle(err ?? new DeviceClientError('closed', 'closed before connecting'));
    session.on('connect', onConnect);
    session.on('close', onClose);
  });
}
