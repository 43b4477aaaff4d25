import type { AuthFailureCode } from '@latchkey/device-sdk/protocol';

/**
 * What the broker needs from the registry. The broker never imports provisioning: its
 * composition root hands it an object of this shape (the SQLite registry implements it).
 * All calls are synchronous (better-sqlite3) and must not throw for unknown ids.
 */
export interface BrokerRegistryPort {
  /** The principal (device id or `svc:{name}`) with its credentials, or null if unknown. */
  findPrincipal(principal: string): PrincipalRecord | null;
  /** Subscribe to registry changes; returns an unsubscribe function. */
  onChange(listener: (change: RegistryChange) => void): () => void;
  /** Device status (docs/api.md device resource `status`). `at` is epoch ms. */
  recordConnected(deviceId: string, at: number): void;
  recordDisconnected(deviceId: string, at: number): void;
  /** Batched `lastSeenAt` updates: one write for many devices. */
  recordSeen(entries: ReadonlyArray<readonly [deviceId: string, at: number]>): void;
  /**
   * Optional: many connect/disconnect events, in order, in ONE write (same effect as calling
   * recordConnected/recordDisconnected for each). The broker queues session events and flushes
   * them about once a second; without this method it falls back to one call per event.
   */
  recordSessionEvents?(events: ReadonlyArray<SessionEvent>): void;
  /**
   * A refused CONNECT: sets the device's `lastError` when `principal` names a known device
   * and appends an audit entry with the internal reason (and, for a summary of repeated
   * refusals, their count). Never given the token.
   */
  recordAuthFailure(failure: AuthFailureRecord): void;
  /** Batched `lastError` updates of refused connects, one write for many devices; unknown ids are ignored. */
  recordLastErrors(entries: ReadonlyArray<readonly [deviceId: string, code: string, at: number]>): void;
  /** Last `devices/{id}/state` payload (JSON text, already validated as JSON). */
  saveState(deviceId: string, stateJson: string, at: number): void;
  /**
   * Cloud IoT Core compatibility (protocol.md §Cloud IoT Core compatibility); needed only with
   * `gcpProjects`. The device id imported with this `numId`, or null.
   */
  deviceIdOfNumId?(numId: string): string | null | Promise<string | null>;
  /** The device's latest config as Cloud IoT Core firmware gets it (raw bytes), or null when it has none. */
  findGcpConfig?(deviceId: string): GcpConfigRecord | null | Promise<GcpConfigRecord | null>;
  /** The device PUBACKed config `version`: sets `deviceAckTime` while that version is still the latest. */
  recordConfigAck?(deviceId: string, version: number, at: number): void | Promise<void>;
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
}

/** The registry change feed (protocol.md §MQTT CONNECT: block, delete, key removal end live sessions). */
export type RegistryChange =
  | { type: 'principal_created'; principal: string }
  | { type: 'principal_blocked'; principal: string }
  | { type: 'principal_unblocked'; principal: string }
  | { type: 'principal_deleted'; principal: string }
  | { type: 'credential_added'; principal: string; kid: string }
  | { type: 'credential_removed'; principal: string; kid: string };
