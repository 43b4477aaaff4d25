import { randomBytes } from 'node:crypto';
import { MAX_CREDENTIALS, servicePrincipal } from '@latchkey/device-sdk/protocol';
import type { WriteTx } from './context.ts';
import { RegistryError } from './errors.ts';
import { all, D, get, run, sql, value, type Plan } from './plan.ts';
import type { CredentialKey, CredentialRecord, CredentialUse, KeyHistoryEntry, UnusedCredential } from './types.ts';

/** Whose credential: exactly one of a device or a service account. */
export type CredentialOwner = { kind: 'device'; deviceId: string } | { kind: 'service'; name: string };

interface CredentialRow {
  kid: string;
  fingerprint: string;
  spki_der: Buffer;
  created_at: number;
  expires_at: number | null;
  last_connect_at: number | null;
  last_message_at: number | null;
}

/** The later of two optional times. */
const later = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));

/** A row's public view (no key material). */
export function credentialRecord(r: Omit<CredentialRow, 'spki_der'>): CredentialRecord {
  return {
    kid: r.kid,
    fingerprint: r.fingerprint,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastConnectAt: r.last_connect_at,
    lastMessageAt: r.last_message_at,
    lastUsedAt: later(r.last_connect_at, r.last_message_at),
  };
}

/** The registry principal of an owner: the device id, or `svc:{name}` (protocol.md §Service accounts). */
export function principalOf(owner: CredentialOwner): string {
  return owner.kind === 'device' ? owner.deviceId : servicePrincipal(owner.name);
}

/**
 * protocol.md §Keys: a certificate's notAfter is the credential's expiry unless an explicit,
 * earlier `expiresAt` is given.
 */
export function effectiveExpiry(explicit: number | null | undefined, key: CredentialKey): number | null {
  if (explicit !== undefined && explicit !== null && !Number.isSafeInteger(explicit)) {
    throw new TypeError('expiresAt must be an integer epoch-ms time or null');
  }
  const fromKey = key.expiresAt ?? null;
  if (explicit === undefined || explicit === null) return fromKey;
  return fromKey === null ? explicit : Math.min(explicit, fromKey);
}

/** A server-assigned, stable, random credential id (URL-safe). */
export function newKid(): string {
  return randomBytes(12).toString('base64url');
}

const Q = {
  // a fingerprint (or, never in practice, a random kid) already stored inserts nothing: key_in_use
  insert: sql`INSERT INTO credentials (kid, principal, device_id, service_name, fingerprint, spki_der, created_at, expires_at)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  delete: sql`DELETE FROM credentials WHERE principal = ? AND kid = ?`,
  count: sql`SELECT count(*) AS n FROM credentials WHERE principal = ?`,
  rows: sql`SELECT kid, fingerprint, spki_der, created_at, expires_at, last_connect_at, last_message_at FROM credentials WHERE principal = ? ORDER BY created_at, ${D.insertionOrder}`,
  lastConnect: sql`SELECT last_connect_at FROM credentials WHERE principal = ? AND kid = ?`,
  // the credential, as it was, into the key history (protocol.md §Signed messages), in the removal's transaction
  keep: sql`INSERT INTO credential_history (kid, principal, device_id, service_name, fingerprint, spki_der, created_at, expires_at, removed_at, last_connect_at, last_message_at)
            SELECT kid, principal, device_id, service_name, fingerprint, spki_der, created_at, expires_at, ?, last_connect_at, last_message_at
            FROM credentials WHERE principal = ? AND kid = ? ON CONFLICT DO NOTHING`,
  history: sql`SELECT kid, fingerprint, spki_der, created_at, expires_at, removed_at, last_connect_at, last_message_at FROM credential_history
               WHERE principal = ? ORDER BY created_at, kid`,
};

/** Never moves a time backwards; a null (no use of that kind in the batch) keeps the stored one. */
const usedSet = sql`last_connect_at = NULLIF(${D.greatest}(coalesce(last_connect_at, 0), coalesce(CAST(? AS bigint), 0)), 0),
  last_message_at = NULLIF(${D.greatest}(coalesce(last_message_at, 0), coalesce(CAST(? AS bigint), 0)), 0)`;
const USED = {
  current: sql`UPDATE credentials SET ${usedSet} WHERE principal = ? AND kid = ?`,
  removed: sql`UPDATE credential_history SET ${usedSet} WHERE principal = ? AND kid = ?`,
};

/**
 * Inserts a credential inside the caller's write. `fresh` skips the limit check for an owner
 * created in the same transaction (it has none yet). Throws `key_in_use`, `credential_limit`.
 * Fingerprints are unique across devices and services (`key_in_use`).
 */
export function* insertCredential(
  tx: WriteTx,
  owner: CredentialOwner,
  key: CredentialKey,
  expiresAt: number | null | undefined,
  fresh: boolean,
): Plan<CredentialRecord> {
  const principal = principalOf(owner);
  if (!fresh && (yield* countCredentials(principal)) >= MAX_CREDENTIALS) {
    // protocol.md §Keys: at most 3 credentials at once.
    throw new RegistryError('credential_limit', `at most ${MAX_CREDENTIALS} credentials per principal`);
  }
  const record: CredentialRecord = {
    kid: newKid(),
    fingerprint: key.fingerprint,
    createdAt: tx.now(),
    expiresAt: effectiveExpiry(expiresAt, key),
    lastConnectAt: null,
    lastMessageAt: null,
    lastUsedAt: null,
  };
  const added = yield* run(
    Q.insert,
    record.kid,
    principal,
    owner.kind === 'device' ? owner.deviceId : null,
    owner.kind === 'service' ? owner.name : null,
    record.fingerprint,
    key.spkiDer,
    record.createdAt,
    record.expiresAt,
  );
  if (added === 0) throw new RegistryError('key_in_use', 'key in use');
  return record;
}

/** How a credential is removed: `inUseSince` refuses one that verified a connect at or after it (epoch ms), unless `force`. */
export interface RemoveCredentialOptions {
  inUseSince?: number;
  force?: boolean;
}

/**
 * Removes one credential of `principal` and keeps it in the key history with `removed_at` now;
 * throws `credential_not_found`, or `credential_in_use` when it verified a connect at or after
 * `o.inUseSince` and `o.force` is not set (issue 15: removing a key in use needs --force).
 */
export function* deleteCredential(tx: WriteTx, principal: string, kid: string, o: RemoveCredentialOptions = {}): Plan<void> {
  const row = yield* get<{ last_connect_at: number | null }>(Q.lastConnect, principal, kid);
  if (row === undefined) throw new RegistryError('credential_not_found', 'no such credential');
  if (o.force !== true && o.inUseSince !== undefined && row.last_connect_at !== null && row.last_connect_at >= o.inUseSince) {
    throw new RegistryError('credential_in_use', 'this credential verified a connect recently; removing it needs force');
  }
  yield* run(Q.keep, tx.now(), principal, kid);
  yield* run(Q.delete, principal, kid);
}

/**
 * The broker's batched usage (one transaction for the whole batch): each credential's last connect
 * and last signed message, never moved backwards; a credential removed meanwhile is updated in the
 * key history; unknown ones are ignored.
 */
export function* recordCredentialUses(uses: ReadonlyArray<CredentialUse>): Plan<void> {
  for (const u of uses) {
    if ((yield* run(USED.current, u.connectAt, u.messageAt, u.principal, u.kid)) === 0) {
      yield* run(USED.removed, u.connectAt, u.messageAt, u.principal, u.kid);
    }
  }
}

/** Every key `principal` has had: current credentials and removed ones, oldest first. */
export function* keyHistory(principal: string): Plan<KeyHistoryEntry[]> {
  const current = (yield* all<CredentialRow>(Q.rows, principal)).map((r) => ({ ...credentialRecord(r), spkiDer: new Uint8Array(r.spki_der), removedAt: null }));
  const removed = (yield* all<CredentialRow & { removed_at: number }>(Q.history, principal)).map((r) => ({
    ...credentialRecord(r),
    spkiDer: new Uint8Array(r.spki_der),
    removedAt: r.removed_at,
  }));
  return [...removed, ...current].sort((a, b) => a.createdAt - b.createdAt);
}

const UNUSED = sql`SELECT device_id, kid, fingerprint, created_at, expires_at, last_connect_at, last_message_at FROM credentials
  WHERE device_id IS NOT NULL AND ${D.greatest}(created_at, coalesce(last_connect_at, 0), coalesce(last_message_at, 0)) < ?
    AND (device_id > ? OR (device_id = ? AND kid > ?))
  ORDER BY device_id, kid LIMIT ?`;

/**
 * Device credentials neither used (connect or signed message) nor registered since `before`
 * (epoch ms): keys that are safe to retire. Keyset paging by (device id, kid) after `after`.
 */
export function* unusedCredentials(before: number, limit: number, after: { deviceId: string; kid: string } | null): Plan<UnusedCredential[]> {
  const a = after ?? { deviceId: '', kid: '' };
  const rows = yield* all<Omit<CredentialRow, 'spki_der'> & { device_id: string }>(UNUSED, before, a.deviceId, a.deviceId, a.kid, limit);
  return rows.map((r) => ({ deviceId: r.device_id, ...credentialRecord(r) }));
}

export function* countCredentials(principal: string): Plan<number> {
  return (yield* value<number>(Q.count, principal)) ?? 0;
}

/** Public view (no key material), oldest first. */
export function* listCredentials(principal: string): Plan<CredentialRecord[]> {
  const rows = yield* all<CredentialRow>(Q.rows, principal);
  return rows.map(credentialRecord);
}
