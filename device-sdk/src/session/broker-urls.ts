import { isIP } from 'node:net';
import type { IClientOptions } from 'mqtt';

const DEFAULT_PORTS: Readonly<Record<string, number>> = { mqtt: 1883, tcp: 1883, mqtts: 8883, tls: 8883, ssl: 8883, ws: 80, wss: 443 };

/**
 * The broker URLs of a session, several when the broker is a cluster (docs/sdk.md): the session
 * starts at one drawn from `random`, so a fleet spreads over the nodes instead of all dialling the
 * first; it moves to the next after a failed attempt or a lost connection, so a dead node costs
 * one attempt and then the backoff continues on the others; and it stays where it is for a
 * planned token refresh.
 *
 * @example
 * ```ts
 * const urls = new BrokerUrls(['mqtts://a:8883', 'mqtts://b:8883'], Math.random);
 * client.on('reconnect', () => urls.applyTo(client.options)); // mqtt.js reads options right after
 * urls.next(); // after a lost connection
 * ```
 */
export class BrokerUrls {
  readonly #urls: readonly URL[];
  readonly #servername: string | undefined;
  #index: number;

  /** `servername`: the configured TLS server name, kept for every URL; otherwise each URL's host name is sent. */
  constructor(urls: readonly string[], random: () => number, servername?: string) {
    if (urls.length === 0) throw new TypeError('brokerUrl must name at least one broker');
    this.#urls = urls.map((u) => new URL(u));
    this.#servername = servername;
    this.#index = Math.min(urls.length - 1, Math.floor(random() * urls.length));
  }

  /** The URL the next attempt dials. */
  get current(): string {
    return (this.#urls[this.#index] as URL).href;
  }

  /** Moves to the next URL (round robin). */
  next(): void {
    this.#index = (this.#index + 1) % this.#urls.length;
  }

  /** Points mqtt.js's options at the current URL: what its stream builder reads for the next connection. */
  applyTo(options: IClientOptions): void {
    const u = this.#urls[this.#index] as URL;
    const protocol = u.protocol.slice(0, -1);
    const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    Object.assign(options, {
      protocol,
      host: hostname,
      hostname,
      port: u.port === '' ? DEFAULT_PORTS[protocol] : Number(u.port),
      path: protocol.startsWith('ws') ? `${u.pathname}${u.search}` : undefined,
      servername: this.#servername ?? (isIP(hostname) === 0 ? hostname : undefined),
    });
  }
}
