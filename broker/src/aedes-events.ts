import type { Clock } from '@latchkey/device-sdk/protocol';
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import type { SessionPrincipal, SessionTable } from './auth/session-table.ts';
import type { DeviceStatus } from './device-status.ts';
import type { SharedState } from './shared-state.ts';
import { onAedesError } from './aedes-internals.ts';
import type { BrokerRegistryPort } from './registry-port.ts';
import { onStatePublish } from './state-publish.ts';

export interface AedesEventDeps {
  sessions: SessionTable;
  status: DeviceStatus;
  /** presence: which node holds each session */
  shared: Pick<SharedState, 'sessionUp' | 'sessionDown'>;
  registry: BrokerRegistryPort;
  clock: Clock;
  /** a signed message's verified body (protocol.md §Signed messages), else null */
  unwrapSigned: (p: SessionPrincipal, topic: string, payload: Buffer) => Promise<Buffer | null>;
  log: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/**
 * Wires aedes's events to presence (every authenticated session), device status (connected,
 * disconnected, last seen), the stored device state (protocol.md §Topics) and the log. Only devices
 * have a status; services are not tracked.
 *
 * @example
 * ```ts
 * wireAedesEvents(aedes, { sessions, status, shared, registry, clock, log, unwrapSigned });
 * ```
 */
export function wireAedesEvents(aedes: Aedes, deps: AedesEventDeps): void {
  const { sessions, status, shared, registry, clock, log, unwrapSigned } = deps;
  aedes.on('clientReady', (client) => {
    const p = sessions.principalOf(client);
    if (p === undefined) return;
    shared.sessionUp(client);
    if (p.kind === 'device') status.connected(p.principal);
  });
  aedes.on('clientDisconnect', (client) => {
    sessions.detach(client);
    const p = sessions.principalOf(client);
    if (p === undefined) return;
    shared.sessionDown(client);
    if (p.kind === 'device') status.disconnected(p.principal);
  });
  aedes.on('ping', (_packet, client) => {
    const p = sessions.principalOf(client);
    if (p?.kind === 'device') status.seen(p.principal);
  });
  aedes.on('publish', (packet: AedesPublishPacket, client: Client | null) => {
    if (client === null) return;
    const p = sessions.principalOf(client);
    if (p?.kind === 'device') {
      status.seen(p.principal);
      onStatePublish(p.principal, packet, { registry, clock, log, unwrapSigned: (payload) => unwrapSigned(p, packet.topic, payload) });
    }
  });
  aedes.on('clientError', (client, err) => {
    // the id as authenticated, else (a refused or unparsed id) only its first 64 characters
    const clientId = sessions.principalOf(client)?.clientId ?? String(client.id ?? '').slice(0, 64);
    log.debug({ clientId, err: err.message }, 'client error');
  });
  aedes.on('connectionError', (_client, err) => log.debug({ err: err.message }, 'connection error'));
  onAedesError(aedes, (err) => log.error({ err }, 'aedes error'));
}
