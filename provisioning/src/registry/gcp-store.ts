import type { ImportDevice, ImportRefusal, ParsedImport } from '../import/import-set.ts';
import type { RegistryContext, WriteTx } from './context.ts';
import { insertCredential, listCredentials } from './credentials.ts';
import { bool, get, json, run, sql, value, type Plan } from './plan.ts';
import type { GcpBindingRecord } from './types.ts';

/** The result of an import (docs/migrating-from-cloud-iot-core.md §Import): nothing is stored unless `refused` is empty. */
export interface GcpImportResult {
  imported: number;
  unchanged: number;
  refused: ImportRefusal[];
  dryRun: boolean;
}

const Q = {
  binding: sql`SELECT project, location, registry, num_id FROM gcp_devices WHERE device_id = ?`,
  byNumId: sql`SELECT device_id FROM gcp_devices WHERE num_id = ?`,
  config: sql`SELECT version, config, data FROM device_config WHERE device_id = ?`,
  ack: sql`UPDATE device_config SET device_ack_at = ? WHERE device_id = ? AND version = ?`,
  keyOwner: sql`SELECT principal FROM credentials WHERE fingerprint = ?`,
  device: sql`SELECT blocked, metadata FROM devices WHERE id = ?`,
  insertDevice: sql`INSERT INTO devices (id, blocked, metadata, created_at) VALUES (?, ?, ?, ?)`,
  insertBinding: sql`INSERT INTO gcp_devices (device_id, project, location, registry, num_id) VALUES (?, ?, ?, ?, ?)`,
  insertConfig: sql`INSERT INTO device_config (device_id, version, config, updated_at, data) VALUES (?, ?, ?, ?, ?)`,
};

/** JSON with its object keys sorted, so two maps with the same entries compare equal. */
function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/** What the native API shows of a Cloud IoT Core config (its bytes live in `device_config.data`). */
export function nativeViewOf(data: Buffer): { binaryData: string } {
  return { binaryData: data.toString('base64') };
}

/** The device's binding, or null when it was not imported from Cloud IoT Core. */
export function* findBinding(deviceId: string): Plan<GcpBindingRecord | null> {
  const r = yield* get<{ project: string; location: string; registry: string; num_id: string }>(Q.binding, deviceId);
  return r === undefined ? null : { project: r.project, location: r.location, registry: r.registry, numId: r.num_id };
}

function* deviceOfNumId(numId: string): Plan<string | null> {
  return (yield* value<string>(Q.byNumId, numId)) ?? null;
}

function* gcpConfig(deviceId: string): Plan<{ version: number; data: Buffer } | null> {
  const r = yield* get<{ version: number; config: string; data: Buffer | null }>(Q.config, deviceId);
  return r === undefined ? null : { version: r.version, data: r.data ?? Buffer.from(r.config) };
}

/** A device of the file against the registry: new, already there exactly so, or refused. */
function* check(d: ImportDevice): Plan<'new' | 'unchanged' | ImportRefusal> {
  const refuse = (code: ImportRefusal['code'], detail: string): ImportRefusal => ({ id: d.id, code, detail });
  const holder = yield* deviceOfNumId(d.numId);
  if (holder !== null && holder !== d.id) return refuse('num_id_in_use', `numId ${d.numId} belongs to device ${holder}`);
  for (const c of d.credentials) {
    const owner = yield* value<string>(Q.keyOwner, c.key.fingerprint);
    if (owner !== undefined && owner !== d.id) return refuse('key_in_use', `the key with fingerprint ${c.key.fingerprint} belongs to another principal`);
  }
  const row = yield* get<{ blocked: unknown; metadata: string }>(Q.device, d.id);
  if (row === undefined) return 'new';
  return (yield* sameAsStored(d, row)) ? 'unchanged' : refuse('device_exists', 'registered already, differently; an import never overwrites a device');
}

function* sameAsStored(d: ImportDevice, row: { blocked: unknown; metadata: string }): Plan<boolean> {
  const b = yield* findBinding(d.id);
  if (b === null || b.project !== d.binding.project || b.location !== d.binding.location || b.registry !== d.binding.registry || b.numId !== d.numId) return false;
  if (bool(row.blocked) !== d.blocked) return false;
  if (canonicalJson(json(row.metadata)) !== canonicalJson(d.metadata ?? {})) return false;
  const stored = (yield* listCredentials(d.id)).map((c) => `${c.fingerprint}/${c.expiresAt}`).sort();
  const given = d.credentials.map((c) => `${c.key.fingerprint}/${c.expiresAt}`).sort();
  if (stored.join(',') !== given.join(',')) return false;
  const config = yield* gcpConfig(d.id);
  if (d.config === null) return config === null;
  return config !== null && config.version === (d.config.version ?? 1) && config.data.equals(d.config.data);
}

function* insert(tx: WriteTx, d: ImportDevice): Plan<void> {
  const now = tx.now();
  yield* run(Q.insertDevice, d.id, d.blocked, JSON.stringify(d.metadata ?? {}), now);
  for (const c of d.credentials) {
    // the import's expiry, never a certificate's own notAfter (docs/migrating-from-cloud-iot-core.md §The formats)
    yield* insertCredential(tx, { kind: 'device', deviceId: d.id }, { fingerprint: c.key.fingerprint, spkiDer: c.key.spkiDer, expiresAt: null }, c.expiresAt, true);
  }
  yield* run(Q.insertBinding, d.id, d.binding.project, d.binding.location, d.binding.registry, d.numId);
  if (d.config !== null) yield* run(Q.insertConfig, d.id, d.config.version ?? 1, JSON.stringify(nativeViewOf(d.config.data)), now, d.config.data);
  tx.emit({ type: 'principal_created', principal: d.id });
}

/**
 * Cloud IoT Core compatibility in the registry (protocol.md §Cloud IoT Core compatibility): the binding
 * each imported device keeps (project, location, registry, numId), its config as raw bytes with its
 * `deviceAckTime`, and the import itself, all-or-nothing and idempotent. Written once for both
 * backends (plan.ts).
 */
export class GcpStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** The device's binding, or null when it was not imported from Cloud IoT Core. */
  binding(deviceId: string): Promise<GcpBindingRecord | null> {
    return this.#ctx.read(() => findBinding(deviceId));
  }

  /** The device id imported with `numId`, or null. */
  deviceIdOfNumId(numId: string): Promise<string | null> {
    return this.#ctx.read(() => deviceOfNumId(numId));
  }

  /** The latest config as Cloud IoT Core firmware receives it (an imported config's bytes, or a JSON config's text); null at version 0. */
  config(deviceId: string): Promise<{ version: number; data: Buffer } | null> {
    return this.#ctx.read(() => gcpConfig(deviceId));
  }

  /** The device PUBACKed `version`: its `deviceAckTime`, while that version is still the latest. */
  async recordConfigAck(deviceId: string, version: number, at: number): Promise<void> {
    await this.#ctx.write(function* () {
      yield* run(Q.ack, at, deviceId, version);
    });
  }

  /**
   * Stores a parsed export, all or nothing (docs/migrating-from-cloud-iot-core.md §Import): a device
   * registered exactly as the file describes it is `unchanged`; one registered differently is
   * `device_exists`; a numId or key another device holds is `num_id_in_use` / `key_in_use`. With
   * any refusal — the parser's or the registry's — or with `dryRun`, nothing is written.
   *
   * @example
   * ```ts
   * const result = await registry.gcp.import(parseGcpImport(JSON.parse(text)), { dryRun: false, actor: 'admin' });
   * ```
   */
  import(parsed: ParsedImport, opts: { dryRun: boolean; actor: string }): Promise<GcpImportResult> {
    return this.#ctx.write(function* (tx) {
      const refused: ImportRefusal[] = [...parsed.refusals];
      const fresh: ImportDevice[] = [];
      let unchanged = 0;
      for (const d of parsed.devices) {
        const verdict = yield* check(d);
        if (verdict === 'new') fresh.push(d);
        else if (verdict === 'unchanged') unchanged += 1;
        else refused.push(verdict);
      }
      if (refused.length > 0 || opts.dryRun) return { imported: refused.length > 0 ? 0 : fresh.length, unchanged, refused, dryRun: opts.dryRun };
      // importing the same file again changes nothing: not even the audit log
      if (fresh.length === 0) return { imported: 0, unchanged, refused, dryRun: false };
      for (const d of fresh) yield* insert(tx, d);
      yield* tx.audit({
        actor: opts.actor,
        action: 'import.gcp',
        target: null,
        detail: { format: parsed.format, imported: fresh.length, unchanged, blocked: fresh.filter((d) => d.blocked).length },
      });
      return { imported: fresh.length, unchanged, refused, dryRun: false };
    });
  }
}
