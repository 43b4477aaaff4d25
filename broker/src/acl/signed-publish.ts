import {
  deviceOfPublishTopic,
  deviceTopics,
  isProtocolError,
  topicMatches,
  verifySignedMessage,
  type Clock,
  type MessageFailureCode,
  type VerifiedMessage,
} from '@latchkey/device-sdk/protocol';
import type { CachedPrincipal } from '../auth/credential-cache.ts';
import type { SessionPrincipal } from '../auth/session-table.ts';

export interface SignedPublishDeps {
  /** the broker audience and clock tolerance (messages carry `<audience>:message`) */
  readonly rules: { readonly audience: string; readonly clockTolerance: number };
  readonly clock: Clock;
  /** a device's current credentials when the broker's cache holds them (null: an unknown device), else undefined */
  readonly credentialsOf: (deviceId: string) => CachedPrincipal | null | undefined;
  /** the same, read from the registry on a cache miss (rejects when the registry fails) */
  readonly loadCredentials: (deviceId: string) => Promise<CachedPrincipal | null>;
  /** topic filters whose device → cloud topics need signed messages (`requireSignedTopics`) */
  readonly requiredTopics: readonly string[];
  /** the longest message (the broker's maxPacketSize) */
  readonly maxBytes: number;
}

/** The outcome of the edge check of one publish. */
export type SignedPublishResult = { ok: true; verified: VerifiedMessage } | { ok: false; reason: MessageFailureCode | 'internal_error' };

/**
 * protocol.md §Signed messages at the broker: on a device → cloud topic that `requireSignedTopics`
 * covers, every publish — a device's own, or a service account's (a bridge) — must be a message
 * signed by the device the topic names, checked with the protocol core's synchronous verifier: one
 * ES256 verify per message (the session's key first, when a device publishes on its own topic).
 * Other topics (commands, config, a service's own) are never subject to it. Replays are the
 * consumer's to refuse: the edge refuses garbage, alterations and forgeries.
 *
 * @example
 * ```ts
 * const signed = createSignedPublishCheck({ rules: config, clock, credentialsOf: (id) => cache.get(id), requiredTopics: ['devices/+/telemetry/#'], maxBytes });
 * if (signed.required(packet.topic) && !(await signed.check(principal, packet.topic, packet.payload)).ok) refuse();
 * ```
 */
export function createSignedPublishCheck(deps: SignedPublishDeps) {
  const { rules, clock, credentialsOf, loadCredentials, requiredTopics, maxBytes } = deps;
  const credentialsOfRecord = (record: CachedPrincipal | null) => (record === null || record.kind !== 'device' ? null : record.credentials);

  /**
   * Must a publish on `topic` be a signed message? A device → cloud topic that `requireSignedTopics`
   * covers; or the telemetry (`devices/{id}/telemetry[/…]`) of a device whose metadata says
   * `signedTelemetry: "required"`: answered from the broker's cache (the hot path: a device
   * publishing its own telemetry is cached since its CONNECT), else after one registry read.
   */
  function required(topic: string): boolean | Promise<boolean> {
    const deviceId = deviceOfPublishTopic(topic);
    if (deviceId === null) return false;
    if (requiredTopics.length > 0 && requiredTopics.some((f) => topicMatches(f, topic))) return true;
    const { telemetry } = deviceTopics(deviceId);
    if (topic !== telemetry && !topic.startsWith(`${telemetry}/`)) return false;
    const cached = credentialsOf(deviceId);
    if (cached !== undefined) return cached !== null && cached.signedTelemetry;
    // a registry failure: cannot tell, so require (the check then refuses with internal_error)
    return loadCredentials(deviceId).then((record) => record !== null && record.signedTelemetry, () => true);
  }

  /** What the edge check verified, by payload (aedes hands the same Buffer on to its `publish` event). */
  const verifiedPayloads = new WeakMap<Buffer, VerifiedMessage>();

  function verify(p: SessionPrincipal, topic: string, payload: Buffer, record: CachedPrincipal | null): SignedPublishResult {
    try {
      const verified = verifySignedMessage(payload, {
        topic,
        audience: rules.audience,
        clockTolerance: rules.clockTolerance,
        now: clock(),
        maxBytes,
        // only the topic's device can verify (a message naming another device fails on its subject)
        resolveCredentials: (id) => (record !== null && id === record.principal ? credentialsOfRecord(record) : null),
        ...(p.kind === 'device' ? { preferKid: p.kid } : {}),
      });
      verifiedPayloads.set(payload, verified);
      return { ok: true, verified };
    } catch (err) {
      if (isProtocolError(err)) return { ok: false, reason: err.code as MessageFailureCode };
      throw err;
    }
  }

  /**
   * Verifies a publish on a topic {@link required} said needs a signed message: synchronously when
   * the broker's cache holds the topic's device (the hot path: a device publishing its own
   * telemetry is cached since its CONNECT), else after one registry read. A registry failure is
   * `internal_error` (refused: garbage must not pass while the keys cannot be read).
   */
  function check(p: SessionPrincipal, topic: string, payload: Buffer): SignedPublishResult | Promise<SignedPublishResult> {
    const deviceId = deviceOfPublishTopic(topic);
    if (deviceId === null) return { ok: false, reason: 'topic_mismatch' };
    const cached = credentialsOf(deviceId);
    if (cached !== undefined) return verify(p, topic, payload, cached);
    return loadCredentials(deviceId).then(
      (record) => verify(p, topic, payload, record),
      (): SignedPublishResult => ({ ok: false, reason: 'internal_error' }),
    );
  }

  /**
   * The message a published payload carries when it is a signed message of the device the topic
   * names: the one the edge check verified, else verified now; null when it is not one (protocol.md
   * §Topics: a signed state report is stored by its body).
   */
  async function unwrap(p: SessionPrincipal, topic: string, payload: Buffer): Promise<VerifiedMessage | null> {
    const known = verifiedPayloads.get(payload);
    if (known !== undefined && known.topic === topic) return known;
    const r = await check(p, topic, payload);
    return r.ok ? r.verified : null;
  }

  return { required, check, unwrap };
}

export type SignedPublishCheck = ReturnType<typeof createSignedPublishCheck>;
