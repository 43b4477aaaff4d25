import { canPublish, canReceive, canSubscribe, toNativeTopic } from '@latchkey/device-sdk/protocol';
import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes';
import type { SessionPrincipal } from '../auth/session-table.ts';
import type { SignedPublishCheck, SignedPublishResult } from './signed-publish.ts';

export interface AuthorizeDeps {
  readonly principalOf: (client: Client | null) => SessionPrincipal | undefined;
  /** A refused publish (the connection is closed by aedes). */
  readonly onPublishDenied: (principal: SessionPrincipal | undefined, topic: string) => void;
  /** What the broker does with a packet it forwards to a Cloud IoT Core session (GcpSessions.forward), after the topic rules allowed it. */
  readonly forwardGcp?: (client: Client, packet: AedesPublishPacket) => AedesPublishPacket;
  /** The edge check of signed messages (protocol.md §Signed messages at the broker). */
  readonly signed: SignedPublishCheck;
  /** A publish the signed-message check refused (the connection is closed), or one it verified. */
  readonly onSignedPublish: (principal: SessionPrincipal, topic: string, result: SignedPublishResult) => void;
}

/** A refusal aedes turns into closing the connection; the message never names the rule. */
const denied = (): Error => new Error('not authorized');

/**
 * The aedes topic hooks (protocol.md §Topics, §Service accounts), all from the protocol core's
 * rules: `authorizePublish` (refused → connection closed; retain cleared for devices; on a topic
 * that requires signed messages, the edge check of protocol.md §Signed messages at the broker),
 * `authorizeSubscribe` (refused filter → SUBACK 0x80) and `authorizeForward` (re-checked per
 * message: aedes persists refused filters of a `clean:false` SUBSCRIBE, architecture.md §Library facts).
 * `$`-topics are closed to everyone by the same rules. A Cloud IoT Core session publishes on its
 * `/devices/{id}/…` topics, rewritten to the native ones they map to (protocol.md §Cloud IoT Core topics)
 * before the signed-message check, which so applies to them as to the native topics.
 *
 * @example
 * ```ts
 * const hooks = createAuthorizers({ principalOf: (c) => sessions.principalOf(c), onPublishDenied });
 * const aedes = new Aedes({ ...hooks });
 * ```
 */
export function createAuthorizers(deps: AuthorizeDeps) {
  function authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    const p = deps.principalOf(client);
    if (p === undefined || !canPublish(p.topics, packet.topic)) {
      deps.onPublishDenied(p, packet.topic);
      callback(denied());
      return;
    }
    // protocol.md §Topics: the retain flag on device publishes is ignored
    if (p.kind === 'device') packet.retain = false;
    // protocol.md §Cloud IoT Core topics: events and state are published where native telemetry and state are
    if (p.topics.kind === 'device' && p.topics.dialect === 'gcp') packet.topic = toNativeTopic(packet.topic) as string;
    // protocol.md §Signed messages at the broker: one verify, only where signatures are required
    const settle = (result: SignedPublishResult) => {
      deps.onSignedPublish(p, packet.topic, result);
      callback(result.ok ? null : denied());
    };
    const check = (required: boolean) => {
      if (!required) {
        callback(null);
        return;
      }
      const result = deps.signed.check(p, packet.topic, packet.payload as Buffer);
      if (result instanceof Promise) void result.then(settle);
      else settle(result);
    };
    const required = deps.signed.required(packet.topic);
    if (required instanceof Promise) void required.then(check);
    else check(required);
  }

  function authorizeSubscribe(
    client: Client,
    sub: Subscription,
    callback: (error: Error | null, subscription?: Subscription | null) => void,
  ): void {
    const p = deps.principalOf(client);
    if (p === undefined) {
      callback(denied());
      return;
    }
    // [MQTT-3.9.3-1] 0x80 for this filter only; the others of the SUBSCRIBE stand
    callback(null, canSubscribe(p.topics, sub.topic) ? sub : null);
  }

  function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const p = deps.principalOf(client);
    // a topic name is a filter matching exactly itself: may this client subscribe to it (receive it)?
    if (p === undefined || !canReceive(p.topics, packet.topic)) return null;
    return p.topics.kind === 'device' && p.topics.dialect === 'gcp' && deps.forwardGcp !== undefined ? deps.forwardGcp(client, packet) : packet;
  }

  return { authorizePublish, authorizeSubscribe, authorizeForward };
}
