import { randomBytes } from 'node:crypto';
import { MAX_CREDENTIALS, servicePrincipal } from '@latchkey/device-sdk/protocol';
import type { WriteTx } from './context.ts';
import { RegistryError } from './errors.ts';
import { all, D, run, sql, value, type Plan } from './plan.ts';
import type { CredentialKey, CredentialRecord } from './types.ts';

/** Whose credential: exactly one of a device or a service account. */
export type CredentialOwner = { kind: 'device'; deviceId: string } | { kind: 'service'; name: string };

interface CredentialRow {
  kid: string;
  fingerprint: string;
  spki_der: Buffer;
  created_at: number;
  expires_at: number | null;
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
  rows: sql`SELECT kid, fingerprint, spki_der, created_at, expires_at FROM credentials WHERE principal = ? ORDER BY created_at, ${D.insertionOrder}`,
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

/** Removes one credential of `principal`; throws `credential_not_found`. */
export function* deleteCredential(principal: string, kid: string): Plan<void> {
  if ((yield* run(Q.delete, principal, kid)) === 0) throw new RegistryError('credential_not_found', 'no such credential');
}

export function* countCredentials(principal: string): Plan<number> {
  return (yield* value<number>(Q.count, principal)) ?? 0;
}

/** Public view (no key material), oldest first. */
export function* listCredentials(principal: string): Plan<CredentialRecord[]> {
  const rows = yield* all<CredentialRow>(Q.rows, principal);
  return rows.map((r) => ({ kid: r.kid, fingerprint: r.fingerprint, createdAt: r.created_at, expiresAt: r.expires_at }));
}
