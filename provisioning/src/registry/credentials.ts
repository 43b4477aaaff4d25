import { randomBytes } from 'node:crypto';
import { MAX_CREDENTIALS, servicePrincipal } from '@latchkey/device-sdk/protocol';
import type { RegistryContext } from './context.ts';
import { RegistryError } from './errors.ts';
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

/** Credentials of devices and service accounts. Fingerprints are unique across both (`key_in_use`). */
export class CredentialStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /**
   * Inserts a credential inside the caller's write. `fresh` skips the limit check for an owner
   * created in the same transaction (it has none yet). Throws `key_in_use`, `credential_limit`.
   */
  insert(owner: CredentialOwner, key: CredentialKey, expiresAt: number | null | undefined, fresh: boolean): CredentialRecord {
    const principal = principalOf(owner);
    if (!fresh && this.count(principal) >= MAX_CREDENTIALS) {
      // protocol.md §Keys: at most 3 credentials at once.
      throw new RegistryError('credential_limit', `at most ${MAX_CREDENTIALS} credentials per principal`);
    }
    const record: CredentialRecord = {
      kid: newKid(),
      fingerprint: key.fingerprint,
      createdAt: this.#ctx.clock(),
      expiresAt: effectiveExpiry(expiresAt, key),
    };
    this.#ctx
      .stmt(
        `INSERT INTO credentials (kid, principal, device_id, service_name, fingerprint, spki_der, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.kid,
        principal,
        owner.kind === 'device' ? owner.deviceId : null,
        owner.kind === 'service' ? owner.name : null,
        record.fingerprint,
        Buffer.from(key.spkiDer.buffer, key.spkiDer.byteOffset, key.spkiDer.byteLength),
        record.createdAt,
        record.expiresAt,
      );
    return record;
  }

  /** Removes one credential of `principal`; throws `credential_not_found`. */
  delete(principal: string, kid: string): void {
    const info = this.#ctx.stmt('DELETE FROM credentials WHERE principal = ? AND kid = ?').run(principal, kid);
    if (info.changes === 0) throw new RegistryError('credential_not_found', 'no such credential');
  }

  count(principal: string): number {
    return this.#ctx.stmt('SELECT count(*) FROM credentials WHERE principal = ?').pluck().get(principal) as number;
  }

  /** Public view (no key material), oldest first. */
  list(principal: string): CredentialRecord[] {
    return this.#rows(principal).map((r) => ({
      kid: r.kid,
      fingerprint: r.fingerprint,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
    }));
  }

  /** What a verifier needs (broker/src/registry-port.ts `PrincipalRecord.credentials`). */
  verifiable(principal: string): Array<{ kid: string; spkiDer: Uint8Array; expiresAt: number | null }> {
    return this.#rows(principal).map((r) => ({ kid: r.kid, spkiDer: new Uint8Array(r.spki_der), expiresAt: r.expires_at }));
  }

  #rows(principal: string): CredentialRow[] {
    return this.#ctx
      .stmt(
        `SELECT kid, fingerprint, spki_der, created_at, expires_at FROM credentials
         WHERE principal = ? ORDER BY created_at, rowid`,
      )
      .all(principal) as CredentialRow[];
  }
}
