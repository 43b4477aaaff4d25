import { gcpDeviceTopics, type Clock } from '@latchkey/device-sdk/protocol';
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import { allocateMessageId, grantedQos, onClientPacket } from '../aedes-internals.ts';

/** A device's latest config as its Cloud IoT Core firmware receives it: raw bytes and their version. */
export interface GcpConfig {
  readonly version: number;
  readonly data: Buffer;
}

export interface GcpSessionsDeps {
  readonly aedes: Aedes;
  readonly clock: Clock;
  /** the device's latest config, or null when it has none (registry) */
  readonly findConfig: (deviceId: string) => Promise<GcpConfig | null>;
  /** the device PUBACKed this config version (registry: sets `deviceAckTime` when it is still the latest) */
  readonly recordConfigAck: (deviceId: string, version: number, at: number) => Promise<void>;
  /** an unacknowledged QoS 1 config is sent again after this long */
  readonly resendMs: number;
  /** a command this node delivered was PUBACKed, or written at QoS 0 (the broker tells the sender) */
  readonly onCommandDelivered: (commandId: string) => void;
  readonly log: { error(obj: object, msg: string): void };
}

/** What this node knows of one Cloud IoT Core session. */
interface GcpSession {
  readonly client: Client;
  readonly deviceId: string;
  /** the config awaiting its PUBACK (QoS 1), with when it was last sent */
  pending: { version: number; sentAt: number } | null;
  /** packet identifier → what it carries, for deliveries awaiting a PUBACK */
  readonly inflight: Map<number, { kind: 'config'; version: number } | { kind: 'command'; id: string }>;
  readonly stopListening: () => void;
}

/** The mark a backend publish carries to be tracked to its PUBACK (an MQTT 5 user property; never written to a 3.1.1 client). */
export const DELIVERY_PROPERTY = 'latchkey-delivery';

/**
 * The Cloud IoT Core sessions of this node and what the broker sends them on its own
 * (protocol.md §Cloud IoT Core config, §Cloud IoT Core commands):
 * - on every SUBSCRIBE to `/devices/{id}/config`, the latest config as raw bytes, at the granted QoS;
 * - at QoS 1, again every `resendMs` until the device PUBACKs it; the PUBACK is reported with the
 *   version it carried (`recordConfigAck`); a newer config supersedes an unacknowledged older one;
 * - commands a backend published with the {@link DELIVERY_PROPERTY} mark, tracked to their PUBACK.
 * A config message is recognised by its payload buffer (aedes hands `authorizeForward` the very
 * buffer given to `client.publish`), so a late PUBACK acknowledges the version it carried, never a
 * newer one.
 *
 * @example
 * ```ts
 * const gcp = new GcpSessions({ aedes, clock, findConfig, recordConfigAck, resendMs: 10_000, onCommandDelivered, log });
 * aedes.on('subscribe', (subs, client) => gcp.onSubscribe(client, subs));
 * ```
 */
export class GcpSessions {
  readonly #deps: GcpSessionsDeps;
  readonly #sessions = new Map<Client, GcpSession>();
  /** the newest session of each device on this node */
  readonly #byDevice = new Map<string, GcpSession>();
  /** config payloads this node sent, by buffer identity → the version they carry */
  readonly #configPayloads = new WeakMap<Buffer, number>();

  constructor(deps: GcpSessionsDeps) {
    this.#deps = deps;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** A Cloud IoT Core session was accepted. */
  attach(client: Client, deviceId: string): void {
    if (this.#sessions.has(client)) return;
    const session: GcpSession = {
      client,
      deviceId,
      pending: null,
      inflight: new Map(),
      stopListening: onClientPacket(client, (p) => {
        if (p.cmd === 'puback' && typeof p.messageId === 'number') this.#onPuback(session, p.messageId);
      }),
    };
    this.#sessions.set(client, session);
    this.#byDevice.set(deviceId, session);
  }

  detach(client: Client): void {
    const s = this.#sessions.get(client);
    if (s === undefined) return;
    s.stopListening();
    this.#sessions.delete(client);
    if (this.#byDevice.get(s.deviceId) === s) this.#byDevice.delete(s.deviceId);
  }

  /** The device's live Cloud IoT Core session on this node, if any (a new one takes over from it). */
  clientOf(deviceId: string): Client | undefined {
    return this.#clientOf(deviceId);
  }

  /** A live Cloud IoT Core session of this device on this node (protocol.md §Cloud IoT Core commands: 409 `device_offline` otherwise). */
  isOnline(deviceId: string): boolean {
    return this.#clientOf(deviceId) !== undefined;
  }

  /** The device's live session here has subscribed to `/devices/{id}/commands/#`. */
  isSubscribedToCommands(deviceId: string): boolean {
    const client = this.#clientOf(deviceId);
    return client !== undefined && grantedQos(client, gcpDeviceTopics(deviceId).commandsFilter) !== null;
  }

  #clientOf(deviceId: string): Client | undefined {
    const s = this.#byDevice.get(deviceId);
    return s === undefined || s.client.closed ? undefined : s.client;
  }

  /** aedes's `subscribe` event: a (re)subscription to the config topic gets the latest config. */
  onSubscribe(client: Client, subs: ReadonlyArray<{ topic: string; qos: number }>): void {
    const s = this.#sessions.get(client);
    if (s === undefined) return;
    const config = gcpDeviceTopics(s.deviceId).config;
    if (subs.some((sub) => sub.topic === config && sub.qos !== 128)) this.#sendLatest(s);
  }

  /** The device's config changed (registry change feed): its subscribed sessions on this node get it now. */
  onConfigChanged(deviceId: string): void {
    const s = this.#byDevice.get(deviceId);
    if (s !== undefined && grantedQos(s.client, gcpDeviceTopics(deviceId).config) !== null) this.#sendLatest(s);
  }

  /** Sends again every QoS 1 config whose PUBACK is overdue (the broker's sweep). */
  sweep(now: number): void {
    for (const s of this.#sessions.values()) {
      if (s.pending !== null && s.pending.sentAt + this.#deps.resendMs <= now) this.#sendLatest(s);
    }
  }

  /**
   * `authorizeForward` for a Cloud IoT Core client, after the topic rules allowed the packet: a
   * tracked delivery (a config this node sent, a marked command) gets a packet identifier of its own
   * at QoS 1, remembered until its PUBACK; a marked command delivered at QoS 0 counts as delivered.
   */
  forward(client: Client, packet: AedesPublishPacket): AedesPublishPacket {
    const s = this.#sessions.get(client);
    if (s === undefined) return packet;
    const configVersion = this.#configPayloads.get(packet.payload as Buffer);
    const commandId = configVersion === undefined ? markOf(packet) : undefined;
    if (configVersion === undefined && commandId === undefined) return packet;
    const out = commandId === undefined ? packet : unmarked(packet);
    const qos = Math.min(packet.qos, grantedQos(client, commandId === undefined ? packet.topic : gcpDeviceTopics(s.deviceId).commandsFilter) ?? 0);
    if (qos === 0) {
      if (commandId !== undefined) this.#deps.onCommandDelivered(commandId);
      return out;
    }
    const messageId = allocateMessageId(client);
    s.inflight.set(messageId, configVersion !== undefined ? { kind: 'config', version: configVersion } : { kind: 'command', id: commandId as string });
    return Object.assign(out, { messageId });
  }

  #onPuback(s: GcpSession, messageId: number): void {
    const what = s.inflight.get(messageId);
    if (what === undefined) return;
    s.inflight.delete(messageId);
    if (what.kind === 'command') {
      this.#deps.onCommandDelivered(what.id);
      return;
    }
    if (s.pending?.version === what.version) s.pending = null;
    // the registry records it only while it is the latest version (a superseded one acknowledges nothing newer)
    this.#deps.recordConfigAck(s.deviceId, what.version, this.#deps.clock()).catch((err: unknown) => this.#deps.log.error({ err, deviceId: s.deviceId }, 'recording a config ack failed'));
  }

  #sendLatest(s: GcpSession): void {
    this.#deps
      .findConfig(s.deviceId)
      .then((config) => {
        if (config === null || s.client.closed || !this.#sessions.has(s.client)) return;
        const topic = gcpDeviceTopics(s.deviceId).config;
        const qos = grantedQos(s.client, topic);
        if (qos === null) return;
        // a newer version replaces the pending one: the older is not sent again
        s.pending = qos > 0 ? { version: config.version, sentAt: this.#deps.clock() } : null;
        const payload = Buffer.from(config.data); // a buffer of its own: its identity names the version
        this.#configPayloads.set(payload, config.version);
        s.client.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => undefined);
      })
      .catch((err: unknown) => this.#deps.log.error({ err, deviceId: s.deviceId }, 'loading a config to send failed'));
  }
}

/** The command id a backend publish carries ({@link DELIVERY_PROPERTY}), if any. */
function markOf(packet: AedesPublishPacket): string | undefined {
  const props = (packet as { properties?: { userProperties?: Record<string, unknown> } }).properties;
  const mark = props?.userProperties?.[DELIVERY_PROPERTY];
  return typeof mark === 'string' ? mark : undefined;
}

/** The packet without its mark (a copy: the original may be forwarded to other subscribers too). */
function unmarked(packet: AedesPublishPacket): AedesPublishPacket {
  const { properties: _mark, ...rest } = packet as AedesPublishPacket & { properties?: unknown };
  return Object.assign(Object.create(Object.getPrototypeOf(packet) as object) as AedesPublishPacket, rest);
}
