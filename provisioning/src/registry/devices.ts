import type { RegistryContext } from './context.ts';
import type { CredentialStore } from './credentials.ts';
import { queryDevices, type DevicePage, type DeviceQuery } from './device-query.ts';
import { DEVICE_SELECT, toDeviceRecord, type DeviceRow } from './device-rows.ts';
import { RegistryError, toRegistryError, type BatchItemError } from './errors.ts';
import type { CredentialKey, CredentialRecord, DeviceRecord, JsonObject, NewDevice, Page } from './types.ts';

/** api.md §Devices: a batch holds at most this many devices. */
export const MAX_BATCH = 10_000;

/** Devices and their credentials. Every write is one transaction with its audit entry. */
export class DeviceStore {
  readonly #ctx: RegistryContext;
  readonly #credentials: CredentialStore;

  constructor(ctx: RegistryContext, credentials: CredentialStore) {
    this.#ctx = ctx;
    this.#credentials = credentials;
  }

  /** Registers one device with its first credential. Throws `device_exists`, `key_in_use`. */
  create(input: NewDevice, actor: string): DeviceRecord {
    return this.#ctx.write(() => {
      const record = this.insert(input);
      this.#ctx.audit({ actor, action: 'device.create', target: input.id, detail: { kid: record.credentials[0]?.kid } });
      return record;
    });
  }

  /**
   * Registers up to 10,000 devices in ONE transaction, all-or-nothing. Every refused item is
   * named by index in a `batch_rejected` error (duplicates inside the batch included).
   * A `null` item stands for one the caller already refused (its own validation): the others
   * are still checked, so every bad item gets named, and nothing is stored.
   *
   * @example
   * ```ts
   * registry.devices.createMany([{ id: 'a-1', key }, null], 'admin') // throws batch_rejected, items: []
   * ```
   */
  createMany(inputs: ReadonlyArray<NewDevice | null>, actor: string): string[] {
    if (!Array.isArray(inputs) || inputs.length > MAX_BATCH) throw new TypeError(`a batch holds 0..${MAX_BATCH} devices`);
    return this.#ctx.write(() => {
      const failures: BatchItemError[] = [];
      let refusedByCaller = 0;
      inputs.forEach((input, index) => {
        if (input === null) {
          refusedByCaller += 1;
          return;
        }
        try {
          this.insert(input);
        } catch (e) {
          const err = toRegistryError(e);
          if (err.code === 'internal_error') throw err;
          failures.push({ index, code: err.code });
        }
      });
      if (failures.length > 0 || refusedByCaller > 0) {
        throw new RegistryError('batch_rejected', `${failures.length + refusedByCaller} device(s) refused`, { items: failures });
      }
      this.#ctx.audit({ actor, action: 'device.batch_create', target: null, detail: { count: inputs.length } });
      return (inputs as NewDevice[]).map((d) => d.id);
    });
  }

  /**
   * Inserts inside the caller's write (used by create, createMany and enrollment); emits
   * `principal_created` when the write commits.
   * On a refused key the device row is removed again so a batch keeps going cleanly.
   */
  insert(input: NewDevice): DeviceRecord {
    const createdAt = this.#ctx.clock();
    const metadata = input.metadata ?? {};
    this.#ctx
      .stmt('INSERT INTO devices (id, blocked, metadata, created_at) VALUES (?, 0, ?, ?)')
      .run(input.id, JSON.stringify(metadata), createdAt);
    let credential: CredentialRecord;
    try {
      credential = this.#credentials.insert({ kind: 'device', deviceId: input.id }, input.key, input.expiresAt, true);
    } catch (e) {
      this.#ctx.stmt('DELETE FROM devices WHERE id = ?').run(input.id);
      throw e;
    }
    // the broker may remember this id as unknown (its negative cache): tell it
    this.#ctx.emit({ type: 'principal_created', principal: input.id });
    return {
      id: input.id,
      blocked: false,
      metadata,
      createdAt,
      credentials: [credential],
      status: { connected: false, lastConnectedAt: null, lastDisconnectedAt: null, lastSeenAt: null, lastError: null },
      config: { version: 0 },
    };
  }

  /** The device, or null. */
  find(id: string): DeviceRecord | null {
    return this.#ctx.read(() => {
      const row = this.#ctx.stmt(`${DEVICE_SELECT} WHERE d.id = ?`).get(id) as DeviceRow | undefined;
      return row === undefined ? null : toDeviceRecord(row, this.#credentials);
    });
  }

  /** The device; throws `device_not_found`. */
  get(id: string): DeviceRecord {
    const d = this.find(id);
    if (d === null) throw new RegistryError('device_not_found', 'no such device');
    return d;
  }

  exists(id: string): boolean {
    return this.#ctx.read(() => this.#ctx.stmt('SELECT 1 FROM devices WHERE id = ?').get(id) !== undefined);
  }

  /** Devices ordered by id, after `after` (exclusive), optionally filtered by `blocked`. */
  list(opts: { limit: number; after?: string | null; blocked?: boolean | null }): Page<DeviceRecord> {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new TypeError('limit must be a positive integer');
    return this.#ctx.read(() => {
      const blocked = opts.blocked === undefined || opts.blocked === null ? null : opts.blocked ? 1 : 0;
      const rows = this.#ctx
        .stmt(`${DEVICE_SELECT} WHERE d.id > ? AND (? IS NULL OR d.blocked = ?) ORDER BY d.id LIMIT ?`)
        .all(opts.after ?? '', blocked, blocked, opts.limit + 1) as DeviceRow[];
      const more = rows.length > opts.limit;
      const items = rows.slice(0, opts.limit).map((r) => toDeviceRecord(r, this.#credentials));
      return { items, next: more ? (items[items.length - 1]?.id ?? null) : null };
    });
  }

  /** A listing page with status and id-prefix filters, keyset-paged both ways (device-query.ts). */
  query(q: DeviceQuery): DevicePage {
    return queryDevices(this.#ctx, this.#credentials, q);
  }

  /** Sets `blocked` and/or replaces `metadata`. Blocking emits `principal_blocked`. */
  update(id: string, patch: { blocked?: boolean; metadata?: JsonObject }, actor: string): DeviceRecord {
    this.#ctx.write(() => {
      const current = this.#ctx.stmt('SELECT blocked FROM devices WHERE id = ?').pluck().get(id) as number | undefined;
      if (current === undefined) throw new RegistryError('device_not_found', 'no such device');
      if (patch.blocked !== undefined && patch.blocked !== (current === 1)) {
        this.#ctx.stmt('UPDATE devices SET blocked = ? WHERE id = ?').run(patch.blocked ? 1 : 0, id);
        this.#ctx.emit({ type: patch.blocked ? 'principal_blocked' : 'principal_unblocked', principal: id });
      }
      if (patch.metadata !== undefined) {
        this.#ctx.stmt('UPDATE devices SET metadata = ? WHERE id = ?').run(JSON.stringify(patch.metadata), id);
      }
      const detail: JsonObject = {};
      if (patch.blocked !== undefined) detail.blocked = patch.blocked;
      if (patch.metadata !== undefined) detail.metadata = true;
      this.#ctx.audit({ actor, action: 'device.update', target: id, detail });
    });
    return this.get(id);
  }

  /** Deletes the device with its credentials, status, config and state; emits `principal_deleted`. */
  delete(id: string, actor: string): void {
    this.#ctx.write(() => {
      const info = this.#ctx.stmt('DELETE FROM devices WHERE id = ?').run(id);
      if (info.changes === 0) throw new RegistryError('device_not_found', 'no such device');
      this.#ctx.emit({ type: 'principal_deleted', principal: id });
      this.#ctx.audit({ actor, action: 'device.delete', target: id });
    });
  }

  /** protocol.md §Keys: adds a credential (≤ 3). Throws `device_not_found`, `credential_limit`, `key_in_use`. */
  addCredential(id: string, key: CredentialKey, expiresAt: number | null | undefined, actor: string): CredentialRecord {
    return this.#ctx.write(() => {
      if (!this.exists(id)) throw new RegistryError('device_not_found', 'no such device');
      const c = this.#credentials.insert({ kind: 'device', deviceId: id }, key, expiresAt, false);
      this.#ctx.emit({ type: 'credential_added', principal: id, kid: c.kid });
      this.#ctx.audit({ actor, action: 'credential.add', target: id, detail: { kid: c.kid, fingerprint: c.fingerprint } });
      return c;
    });
  }

  /** Removes a credential; emits `credential_removed`. Throws `device_not_found`, `credential_not_found`. */
  removeCredential(id: string, kid: string, actor: string): void {
    this.#ctx.write(() => {
      if (!this.exists(id)) throw new RegistryError('device_not_found', 'no such device');
      this.#credentials.delete(id, kid);
      this.#ctx.emit({ type: 'credential_removed', principal: id, kid });
      this.#ctx.audit({ actor, action: 'credential.remove', target: id, detail: { kid } });
    });
  }
}
