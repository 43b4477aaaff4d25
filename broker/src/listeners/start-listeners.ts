import type { BrokerConfig } from '../config.ts';
import { trustedProxies } from './forwarded-for.ts';
import { listenTcp, listenTls, listenWs, type ConnectionHandler, type Listener, type ProxyOptions } from './listeners.ts';

/** Where the broker listens (actual ports, also when configured as 0). */
export interface BrokerAddresses {
  readonly mqtt: { host: string; port: number } | null;
  readonly mqtts: { host: string; port: number } | null;
  readonly ws: { host: string; port: number } | null;
}

/**
 * Opens the configured listeners (protocol.md §MQTT CONNECT: TCP by default, TLS and WebSocket
 * by configuration). If one fails to bind, the ones already open are closed again. `trustProxy`
 * peers may send a PROXY header on TCP and TLS (and X-Forwarded-For on WebSocket); `onProxyRefused`
 * learns of connections closed for a bad or missing one.
 */
export async function startListeners(
  config: BrokerConfig,
  onConnection: ConnectionHandler,
  onProxyRefused: ProxyOptions['onRefused'] = () => undefined,
): Promise<Listener[]> {
  const open: Listener[] = [];
  const timeoutMs = config.connectTimeout * 1000;
  const trusted = trustedProxies(config.trustProxy);
  const proxy = trusted === null ? null : { trusted, timeoutMs, onRefused: onProxyRefused };
  try {
    open.push(await listenTcp({ host: config.host, port: config.mqttPort, onConnection, proxy }));
    if (config.mqttsPort !== null) {
      open.push(
        await listenTls({
          host: config.host,
          port: config.mqttsPort,
          onConnection,
          proxy,
          cert: config.tlsCert as string,
          key: config.tlsKey as string,
          handshakeTimeoutMs: timeoutMs,
        }),
      );
    }
    if (config.wsPort !== null) {
      open.push(
        await listenWs({
          host: config.host,
          port: config.wsPort,
          onConnection,
          maxPayload: config.maxPacketSize,
          upgradeTimeoutMs: timeoutMs,
          trusted,
        }),
      );
    }
    return open;
  } catch (err) {
    await Promise.all(open.map((l) => l.close()));
    throw err;
  }
}

/** The bound address of each listener kind; null for one not configured. */
export function addressesOf(listeners: readonly Listener[]): BrokerAddresses {
  const find = (kind: Listener['kind']) => {
    const l = listeners.find((x) => x.kind === kind);
    return l === undefined ? null : { host: l.host, port: l.port };
  };
  return { mqtt: find('mqtt'), mqtts: find('mqtts'), ws: find('ws') };
}
