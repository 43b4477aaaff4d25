import type { EventEmitter } from 'node:events';
import type { Session, SessionEvents } from '../session/session.ts';

/** Events of a DeviceClient and a ServiceClient. */
export type ClientEvents = SessionEvents;

/** Forwards session events; `'error'` only to listeners, so an unheard refusal cannot crash the process. */
export function forwardEvents(from: Session, to: EventEmitter<ClientEvents>): void {
  from.on('connect', (i) => to.emit('connect', i));
  from.on('offline', () => to.emit('offline'));
  from.on('token-refresh', (i) => to.emit('token-refresh', i));
  from.on('close', (e) => to.emit('close', e));
  from.on('handler-error', (e, t) => to.emit('handler-error', e, t));
  from.on('error', (e) => {
    if (to.listenerCount('error') > 0) to.emit('error', e);
  });
}
