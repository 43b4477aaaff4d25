import type { AuthFailureCode } from '@latchkey/device-sdk/protocol';

/**
 * What the broker needs from the registry. The broker never imports provisioning: its
 * composition root hands it an object of this shape (the registry implements it). Every call is
 * asynchronous; unknown ids are never an error.
 */
export interface BrokerRegistryPort {
  /**
   * The principal (device id or `svc:{name}`) with its credentials, or null if unknown. REJECTS
   * when the database fails: the CONNECT gets CONNACK 3 (server unavailable), never the "unknown"
   * CONNACK 4, which the SDK treats as fatal (a database blip must not brick devices).
   */
  findPrincipal(principal: string): Promise<PrincipalRecord | null>;
  /** Subscribe to registry changes (delivered once each, in commit order); returns an unsubscribe function. */
  onChange(listener: (change: RegistryChange) => void): () => void;
  /**
   * Many connect/disconnect events, in order, in ONE write (docs/api.md device resource `status`):
   * the broker queues session events and flushes them about once a second. `at` is epoch ms.
   */
  recordSessionEvents(events: ReadonlyArray<SessionEvent>): Promise<void>;
  /** Batched `lastSeenAt` updates: one write for many devices. */
  recordSeen(entries: ReadonlyArray<readonly [deviceId: string, at: number]>): Promise<void>;
  /**
   * Batched credential usage (issue 15): when each credential last verified a connect and a signed
   * message, one write for many credentials; unknown ones are ignored.
   */
  recordCredentialUses(uses: ReadonlyArray<CredentialUse>): Promise<void>;
  /**
   * A refused CONNECT: sets the device's `lastError` when `principal` names a known device
   * and appends an audit entry with the internal reason (and, for a summary of repeated
   * refusals, their count). Never given the token.
   */
  recordAuthFailure(failure: AuthFailureRecord): Promise<void>;
  /** Batched `lastError` updates of refused connects, one write for many devices; unknown ids are ignored. */
  recordLastErrors(entries: ReadonlyArray<readonly [deviceId: string, code: string, at: number]>): Promise<void>;
  /** Last `devices/{id}/state` payload (JSON text, already validated as JSON). */
  saveState(deviceId: string, stateJson: string, at: number): Promise<void>;
  /**
   * Every device's current config, `limit` at a time in device id order after `after` (null: from
   * the start). At start the broker publishes them again as retained `devices/{id}/config`
   * messages (docs/operations.md §What survives a restart).
   */
  allConfigs(after: string | null, limit: number): Promise<ReadonlyArray<{ deviceId: string; version: number; config: unknown }>>;
  /** The change feed's health: the CONNECT gate and the resync after an outage. */
  readonly feed: BrokerFeedHealth;
  /**
   * Cloud IoT Core compatibility (protocol.md §Cloud IoT Core compatibility); needed only with
   * `gcpProjects`. The device id imported with this `numId`, or null.
   */
  deviceIdOfNumId?(numId: string): Promise<string | null>;
  /** The device's latest config as Cloud IoT Core firmware gets it (raw bytes), or null when it has none. */
  findGcpConfig?(deviceId: string): Promise<GcpConfigRecord | null>;
  /** The device PUBACKed config `version`: sets `deviceAckTime` while that version is still the latest. */
  recordConfigAck?(deviceId: string, version: number, at: number): Promise<void>;
}

/** A config as Cloud IoT Core firmware gets it: its version and raw bytes. */
export interface GcpConfigRecord {
  readonly version: number;
  readonly data: Buffer;
}

/** The Cloud IoT Core registry a device was imported from: what its path client id must name. */
export interface GcpBinding {
  readonly project: string;
  readonly location: string;
  readonly registry: string;
  readonly numId: string;
}

/**
 * What the broker reads of the registry's change feed (docs/operations.md §Change feed). On SQLite
 * the feed is in-process and never down; on PostgreSQL it is a LISTEN connection that can be lost.
 */
export interface BrokerFeedHealth {
  /**
   * ms the feed has been down (0 while it is up and caught up). Above `FEED_DOWN_LIMIT_MS` the broker
   * refuses new CONNECTs with CONNACK 3: it could miss a revocation.
   */
  downForMs(): number;
  /**
   * `down`; `resynced` (back, and every missed change was delivered through `onChange`);
   * `full_resync` (back, but changes were lost to outbox pruning: the broker drops its credential
   * cache and re-checks every live session). Returns the unsubscribe function.
   */
  onState(listener: (state: 'down' | 'resynced' | 'full_resync') => void): () => void;
}

/** When a credential (`kid` of `principal`) verified a connect and/or a signed message (epoch ms; null: not in this batch). */
export interface CredentialUse {
  principal: string;
  kid: string;
  connectAt: number | null;
  messageAt: number | null;
}

/** A device session opened or closed at `at` (epoch ms). */
export interface SessionEvent {
  deviceId: string;
  type: 'connected' | 'disconnected';
  at: number;
}

export interface AuthFailureRecord {
  /** device id or `svc:{name}` when the client id parsed, else null */
  principal: string | null;
  clientId: string;
  reason: AuthFailureCode;
  remoteAddress: string | null;
  at: number;
  /**
   * A summary, not one refusal: `count` more refusals for this address (or principal) since
   * `since` (epoch ms), by reason; `reason` and `at` are the last of them.
   */
  repeated?: { count: number; reasons: Readonly<Record<string, number>>; since: number };
}

export interface PrincipalRecord {
  kind: 'device' | 'service';
  /** device id, or `svc:{name}` */
  principal: string;
  /** always false for services */
  blocked: boolean;
  /** devices imported from Cloud IoT Core; absent or null otherwise */
  gcp?: GcpBinding | null;
  /** service accounts only; null for devices */
  acl: { publish: readonly string[]; subscribe: readonly string[] } | null;
  credentials: ReadonlyArray<{
    kid: string;
    /** canonical SPKI DER of the P-256 public key */
    spkiDer: Uint8Array;
    /** epoch ms, or null for no expiry */
    expiresAt: number | null;
  }>;
  /** devices: metadata `signedTelemetry: "required"` (protocol.md §Signed messages at the broker); services: false */
  signedTelemetry: boolean;
}

/** The registry change feed (protocol.md §MQTT CONNECT: block, delete, key removal end live sessions). */
export type RegistryChange =
  | { type: 'principal_created'; principal: string }
  | { type: 'principal_blocked'; principal: string }
  | { type: 'principal_unblocked'; principal: string }
  | { type: 'principal_updated'; principal: string }
  | { type: 'principal_deleted'; principal: string }
  | { type: 'credential_added'; principal: string; kid: string }
  | { type: 'credential_removed'; principal: string; kid: string };
