/**
 * Records the registry hands out. Times are epoch milliseconds from the injected clock.
 * Shapes follow docs/api.md's resources so the HTTP layer serializes them as they are.
 */
import type { ParsedPublicKey } from '@latchkey/device-sdk/protocol';

/** A JSON object (metadata, ACLs, config, state). */
export type JsonObject = { [key: string]: unknown };

/** The parts of a parsed public key the registry stores (from the protocol core's `parsePublicKey`). */
export type CredentialKey = Pick<ParsedPublicKey, 'fingerprint' | 'spkiDer' | 'expiresAt'>;

export interface CredentialRecord {
  kid: string;
  fingerprint: string;
  createdAt: number;
  expiresAt: number | null;
  /** issue 15: when it last verified a connect, or a signed message, and the later of the two (epoch ms; null: never) */
  lastConnectAt: number | null;
  lastMessageAt: number | null;
  lastUsedAt: number | null;
}

/** One key of a device's key history (protocol.md §Signed messages): a current or a removed credential, with its key. */
export interface KeyHistoryEntry extends CredentialRecord {
  /** canonical SPKI DER of the P-256 public key */
  spkiDer: Uint8Array;
  /** epoch ms; null while the credential is current */
  removedAt: number | null;
}

/** A device credential not used since a time (`latchkey devices keys --unused-for`). */
export interface UnusedCredential extends CredentialRecord {
  deviceId: string;
}

/** When a credential verified a connect and/or a signed message: one entry of the broker's batch. */
export interface CredentialUse {
  principal: string;
  kid: string;
  connectAt: number | null;
  messageAt: number | null;
}

export interface DeviceStatus {
  connected: boolean;
  lastConnectedAt: number | null;
  lastDisconnectedAt: number | null;
  lastSeenAt: number | null;
  lastError: { code: string; at: number } | null;
}

/** The Cloud IoT Core registry a device was imported from (protocol.md §Cloud IoT Core client ids). */
export interface GcpBindingRecord {
  project: string;
  location: string;
  registry: string;
  /** Cloud IoT Core's numeric id, canonical decimal */
  numId: string;
}

/** docs/api.md: a device resource. Never any secret. */
export interface DeviceRecord {
  id: string;
  blocked: boolean;
  metadata: JsonObject;
  createdAt: number;
  credentials: CredentialRecord[];
  status: DeviceStatus;
  /** `deviceAckTime`: when a Cloud IoT Core session PUBACKed this version (protocol.md §Cloud IoT Core config), else null */
  config: { version: number; deviceAckTime?: number | null };
  /** devices imported from Cloud IoT Core; null otherwise */
  gcp?: GcpBindingRecord | null;
}

export interface NewDevice {
  id: string;
  key: CredentialKey;
  /** explicit credential expiry, epoch ms; the earlier of this and a certificate's notAfter wins */
  expiresAt?: number | null;
  metadata?: JsonObject;
}

export interface ServiceAcl {
  publish: string[];
  subscribe: string[];
}

export interface ServiceRecord {
  name: string;
  principal: string;
  acl: ServiceAcl;
  createdAt: number;
  credentials: CredentialRecord[];
}

export interface NewService {
  name: string;
  key: CredentialKey;
  expiresAt?: number | null;
  acl: ServiceAcl;
}

export interface EnrollmentTokenRecord {
  tokenId: string;
  usesTotal: number;
  usesLeft: number;
  expiresAt: number;
  idPattern: string | null;
  metadata: JsonObject;
  createdAt: number;
}

export interface NewEnrollmentToken {
  tokenId: string;
  /** SHA-256 of the secret; the secret itself never reaches the registry */
  secretHash: Uint8Array;
  uses: number;
  expiresAt: number;
  idPattern: string | null;
  metadata: JsonObject;
}

export interface AuditEntry {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: JsonObject;
}

export interface NewAuditEntry {
  actor: string;
  action: string;
  target: string | null;
  detail?: JsonObject;
}

/** Same shape as broker/src/registry-port.ts `RegistryChange` (provisioning never imports the broker). */
export type RegistryChange =
  | { type: 'principal_created'; principal: string }
  | { type: 'principal_blocked'; principal: string }
  | { type: 'principal_unblocked'; principal: string }
  /** what the broker caches about it changed (a device's metadata): no session ends */
  | { type: 'principal_updated'; principal: string }
  | { type: 'principal_deleted'; principal: string }
  | { type: 'credential_added'; principal: string; kid: string }
  | { type: 'credential_removed'; principal: string; kid: string };

/** A page of a listing; `next` is the last key of this page when more follow, else null. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

/** A refused CONNECT (same shape as broker/src/registry-port.ts `AuthFailureRecord`). */
export interface AuthFailure {
  principal: string | null;
  clientId: string;
  reason: string;
  remoteAddress: string | null;
  at: number;
  /** a summary of repeated refusals: how many since when, by reason */
  repeated?: { count: number; reasons: Readonly<Record<string, number>>; since: number };
}

/** Same shape as broker/src/registry-port.ts `PrincipalRecord`. */
export interface PrincipalRecord {
  kind: 'device' | 'service';
  principal: string;
  blocked: boolean;
  gcp?: GcpBindingRecord | null;
  acl: { publish: readonly string[]; subscribe: readonly string[] } | null;
  credentials: ReadonlyArray<{ kid: string; spkiDer: Uint8Array; expiresAt: number | null }>;
  /** devices: metadata `signedTelemetry: "required"` (its telemetry must be signed at the broker); services: false */
  signedTelemetry: boolean;
}
