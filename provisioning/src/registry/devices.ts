import type { RegistryContext, WriteTx } from './context.ts';
import { deleteCredential, insertCredential, keyHistory, unusedCredentials, type RemoveCredentialOptions } from './credentials.ts';
import { queryDevices, type DevicePage, type DeviceQuery } from './device-query.ts';
import { deviceSelect, groupDevices, type DeviceRow } from './device-rows.ts';
import { RegistryError, type BatchItemError } from './errors.ts';
import { all, bool, get, json, run, sql, type Plan } from './plan.ts';
import { requiresSignedTelemetry } from './signed-telemetry.ts';
import type { CredentialKey, CredentialRecord, DeviceRecord, JsonObject, KeyHistoryEntry, NewDevice, Page, UnusedCredential } from './types.ts';

/** api.md §Devices: a batch holds at most this many devices. */
export const MAX_BATCH = 10_000;

const Q = {
  // an id already taken inserts nothing: device_exists
  insert: sql`INSERT INTO devices (id, blocked, metadata, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  delete: sql`DELETE FROM devices WHERE id = ?`,
  exists: sql`SELECT 1 AS found FROM devices WHERE id = ?`,
  blockedOf: sql`SELECT blocked, metadata FROM devices WHERE id = ?`,
  setBlocked: sql`UPDATE devices SET blocked = ? WHERE id = ?`,
  setMetadata: sql`UPDATE devices SET metadata = ? WHERE id = ?`,
  one: deviceSelect('SELECT * FROM devices WHERE id = ?'),
  page: deviceSelect('SELECT * FROM devices WHERE id > ? AND (CAST(? AS boolean) IS NULL OR blocked = ?) ORDER BY id LIMIT ?'),
};

/**
 * Registers a device with its first credential inside the caller's write; emits `principal_created`
 * when the write commits. Throws `device_exists`, `key_in_use` (and then inserts nothing, so a
 * batch keeps going cleanly). Used by create, createMany and enrollment.
 */
export function* insertDevice(tx: WriteTx, input: NewDevice): Plan<DeviceRecord> {
  const createdAt = tx.now();
  const metadata = input.metadata ?? {};
  if ((yield* run(Q.insert, input.id, false, JSON.stringify(metadata), createdAt)) === 0) {
    throw new RegistryError('device_exists', 'device exists');
  }
  let credential: CredentialRecord;
  try {
    credential = yield* insertCredential(tx, { kind: 'device', deviceId: input.id }, input.key, input.expiresAt, true);
  } catch (e) {
    // a refusal (a RegistryError of the plan; a database error never reaches a plan)
    yield* run(Q.delete, input.id);
    throw e;
  }
  // the broker may remember this id as unknown (its negative cache): tell it
  tx.emit({ type: 'principal_created', principal: input.id });
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
export function* findDevice(id: string): Plan<DeviceRecord | null> {
  return groupDevices(yield* all<DeviceRow>(Q.one, id))[0] ?? null;
}

export function* deviceExists(id: string): Plan<boolean> {
  return (yield* get(Q.exists, id)) !== undefined;
}

function* requireDevice(id: string): Plan<void> {
  if (!(yield* deviceExists(id))) throw new RegistryError('device_not_found', 'no such device');
}

/** Devices and their credentials. Every write is one transaction with its audit entry. */
export class DeviceStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** Registers one device with its first credential. Rejects with `device_exists`, `key_in_use`. */
  create(input: NewDevice, actor: string): Promise<DeviceRecord> {
    return this.#ctx.write(function* (tx) {
      const record = yield* insertDevice(tx, input);
      yield* tx.audit({ actor, action: 'device.create', target: input.id, detail: { kid: record.credentials[0]?.kid } });
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
   * await registry.devices.createMany([{ id: 'a-1', key }, null], 'admin') // rejects batch_rejected, items: []
   * ```
   */
  async createMany(inputs: ReadonlyArray<NewDevice | null>, actor: string): Promise<string[]> {
    if (!Array.isArray(inputs) || inputs.length > MAX_BATCH) throw new TypeError(`a batch holds 0..${MAX_BATCH} devices`);
    return this.#ctx.write(function* (tx) {
      const failures: BatchItemError[] = [];
      let refusedByCaller = 0;
      for (let index = 0; index < inputs.length; index++) {
        const input = inputs[index] as NewDevice | null;
        if (input === null) {
          refusedByCaller += 1;
          continue;
        }
        try {
          yield* insertDevice(tx, input);
        } catch (e) {
          if (!(e instanceof RegistryError) || e.code === 'internal_error') throw e;
          failures.push({ index, code: e.code });
        }
      }
      if (failures.length > 0 || refusedByCaller > 0) {
        throw new RegistryError('batch_rejected', `${failures.length + refusedByCaller} device(s) refused`, { items: failures });
      }
      yield* tx.audit({ actor, action: 'device.batch_create', target: null, detail: { count: inputs.length } });
      return (inputs as NewDevice[]).map((d) => d.id);
    });
  }

  /** The device, or null. */
  find(id: string): Promise<DeviceRecord | null> {
    return this.#ctx.read(() => findDevice(id));
  }

  /** The device; rejects with `device_not_found`. */
  async get(id: string): Promise<DeviceRecord> {
    const d = await this.find(id);
    if (d === null) throw new RegistryError('device_not_found', 'no such device');
    return d;
  }

  exists(id: string): Promise<boolean> {
    return this.#ctx.read(() => deviceExists(id));
  }

  /** Devices ordered by id, after `after` (exclusive), optionally filtered by `blocked`. */
  async list(opts: { limit: number; after?: string | null; blocked?: boolean | null }): Promise<Page<DeviceRecord>> {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new TypeError('limit must be a positive integer');
    const blocked = opts.blocked === undefined || opts.blocked === null ? null : opts.blocked;
    const rows = await this.#ctx.read(() => all<DeviceRow>(Q.page, opts.after ?? '', blocked, blocked, opts.limit + 1));
    const devices = groupDevices(rows);
    const items = devices.slice(0, opts.limit);
    return { items, next: devices.length > opts.limit ? (items[items.length - 1]?.id ?? null) : null };
  }

  /** A listing page with status and id-prefix filters, keyset-paged both ways (device-query.ts). */
  query(q: DeviceQuery): Promise<DevicePage> {
    return queryDevices(this.#ctx, q);
  }

  /** Sets `blocked` and/or replaces `metadata`. Blocking emits `principal_blocked`. */
  update(id: string, patch: { blocked?: boolean; metadata?: JsonObject }, actor: string): Promise<DeviceRecord> {
    return this.#ctx.write(function* (tx) {
      const current = yield* get<{ blocked: unknown; metadata: unknown }>(Q.blockedOf, id);
      if (current === undefined) throw new RegistryError('device_not_found', 'no such device');
      if (patch.blocked !== undefined && patch.blocked !== bool(current.blocked)) {
        yield* run(Q.setBlocked, patch.blocked, id);
        tx.emit({ type: patch.blocked ? 'principal_blocked' : 'principal_unblocked', principal: id });
      }
      if (patch.metadata !== undefined) {
        yield* run(Q.setMetadata, JSON.stringify(patch.metadata), id);
        // protocol.md §Signed messages at the broker: the broker re-reads a device whose requirement changed
        if (requiresSignedTelemetry(patch.metadata) !== requiresSignedTelemetry(json<JsonObject>(current.metadata))) {
          tx.emit({ type: 'principal_updated', principal: id });
        }
      }
      const detail: JsonObject = {};
      if (patch.blocked !== undefined) detail.blocked = patch.blocked;
      if (patch.metadata !== undefined) detail.metadata = true;
      yield* tx.audit({ actor, action: 'device.update', target: id, detail });
      return (yield* findDevice(id)) as DeviceRecord;
    });
  }

  /** Deletes the device with its credentials, status, config and state; emits `principal_deleted`. */
  async delete(id: string, actor: string): Promise<void> {
    await this.#ctx.write(function* (tx) {
      if ((yield* run(Q.delete, id)) === 0) throw new RegistryError('device_not_found', 'no such device');
      tx.emit({ type: 'principal_deleted', principal: id });
      yield* tx.audit({ actor, action: 'device.delete', target: id });
    });
  }

  /** protocol.md §Keys: adds a credential (≤ 3). Rejects with `device_not_found`, `credential_limit`, `key_in_use`. */
  addCredential(id: string, key: CredentialKey, expiresAt: number | null | undefined, actor: string): Promise<CredentialRecord> {
    return this.#ctx.write(function* (tx) {
      yield* requireDevice(id);
      const c = yield* insertCredential(tx, { kind: 'device', deviceId: id }, key, expiresAt, false);
      tx.emit({ type: 'credential_added', principal: id, kid: c.kid });
      yield* tx.audit({ actor, action: 'credential.add', target: id, detail: { kid: c.kid, fingerprint: c.fingerprint } });
      return c;
    });
  }

  /**
   * Removes a credential, keeping it in the key history; emits `credential_removed`. Rejects with
   * `device_not_found`, `credential_not_found`, or `credential_in_use` when it verified a connect at
   * or after `o.inUseSince` and `o.force` is not set.
   */
  async removeCredential(id: string, kid: string, actor: string, o: RemoveCredentialOptions = {}): Promise<void> {
    await this.#ctx.write(function* (tx) {
      yield* requireDevice(id);
      yield* deleteCredential(tx, id, kid, o);
      tx.emit({ type: 'credential_removed', principal: id, kid });
      yield* tx.audit({ actor, action: 'credential.remove', target: id, detail: o.force === true ? { kid, force: true } : { kid } });
    });
  }

  /** protocol.md §Signed messages: every key the device has had, with when it was removed (null: current). Rejects with `device_not_found`. */
  keyHistory(id: string): Promise<KeyHistoryEntry[]> {
    return this.#ctx.read(function* () {
      yield* requireDevice(id);
      return yield* keyHistory(id);
    });
  }

  /** Device credentials neither used nor registered since `before` (epoch ms), by (device id, kid), after `after`. */
  unusedCredentials(before: number, opts: { limit: number; after?: { deviceId: string; kid: string } }): Promise<UnusedCredential[]> {
    return this.#ctx.read(() => unusedCredentials(before, opts.limit, opts.after ?? null));
  }
}
