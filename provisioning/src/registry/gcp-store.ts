import type { ImportDevice, ImportRefusal, ParsedImport } from '../import/import-set.ts';
import type { RegistryContext } from './context.ts';
import type { CredentialStore } from './credentials.ts';
import type { GcpBindingRecord } from './types.ts';

/** The result of an import (docs/migrating-from-cloud-iot-core.md §Import): nothing is stored unless `refused` is empty. */
export interface GcpImportResult {
  imported: number;
  unchanged: number;
  refused: ImportRefusal[];
  dryRun: boolean;
}

interface BindingRow {
  device_id: string;
  project: string;
  location: string;
  registry: string;
  num_id: string;
}

/** JSON with its object keys sorted, so two maps with the same entries compare equal. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const o = value as Record<string, unknown>;
  return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/** What the native API shows of a Cloud IoT Core config (its bytes live in `device_config.data`). */
function nativeViewOf(data: Buffer): string {
  return JSON.stringify({ binaryData: data.toString('base64') });
}

/**
 * Cloud IoT Core compatibility in the registry (protocol.md §Cloud IoT Core compatibility): the binding
 * each imported device keeps (project, location, registry, numId), its config as raw bytes with its
 * `deviceAckTime`, and the import itself, all-or-nothing and idempotent.
 */
export class GcpStore {
  readonly #ctx: RegistryContext;
  readonly #credentials: CredentialStore;

  constructor(ctx: RegistryContext, credentials: CredentialStore) {
    this.#ctx = ctx;
    this.#credentials = credentials;
  }

  /** The device's binding, or null when it was not imported from Cloud IoT Core. */
  binding(deviceId: string): GcpBindingRecord | null {
    const r = this.#ctx.stmt('SELECT device_id, project, location, registry, num_id FROM gcp_devices WHERE device_id = ?').get(deviceId) as BindingRow | undefined;
    return r === undefined ? null : { project: r.project, location: r.location, registry: r.registry, numId: r.num_id };
  }

  /** The device id imported with `numId`, or null. */
  deviceIdOfNumId(numId: string): string | null {
    return (this.#ctx.stmt('SELECT device_id FROM gcp_devices WHERE num_id = ?').pluck().get(numId) as string | undefined) ?? null;
  }

  /**
   * The latest config as Cloud IoT Core firmware receives it: an imported config's bytes, or the
   * JSON text of a config set through the native API. Null when the device has none (version 0).
   */
  config(deviceId: string): { version: number; data: Buffer } | null {
    const r = this.#ctx.stmt('SELECT version, config, data FROM device_config WHERE device_id = ?').get(deviceId) as
      | { version: number; config: string; data: Buffer | null }
      | undefined;
    if (r === undefined) return null;
    return { version: r.version, data: r.data ?? Buffer.from(r.config) };
  }

  /** The device PUBACKed `version`: its `deviceAckTime`, while that version is still the latest. */
  recordConfigAck(deviceId: string, version: number, at: number): void {
    this.#ctx.write(() => {
      this.#ctx.stmt('UPDATE device_config SET device_ack_at = ? WHERE device_id = ? AND version = ?').run(at, deviceId, version);
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
   * const result = registry.gcp.import(parseGcpImport(JSON.parse(text)), { dryRun: false, actor: 'admin' });
   * ```
   */
  import(parsed: ParsedImport, opts: { dryRun: boolean; actor: string }): GcpImportResult {
    return this.#ctx.write(() => {
      const refused: ImportRefusal[] = [...parsed.refusals];
      const fresh: ImportDevice[] = [];
      let unchanged = 0;
      for (const d of parsed.devices) {
        const verdict = this.#check(d);
        if (verdict === 'new') fresh.push(d);
        else if (verdict === 'unchanged') unchanged += 1;
        else refused.push(verdict);
      }
      if (refused.length > 0 || opts.dryRun) return { imported: refused.length > 0 ? 0 : fresh.length, unchanged, refused, dryRun: opts.dryRun };
      // importing the same file again changes nothing: not even the audit log
      if (fresh.length === 0) return { imported: 0, unchanged, refused, dryRun: false };
      for (const d of fresh) this.#insert(d);
      this.#ctx.audit({
        actor: opts.actor,
        action: 'import.gcp',
        target: null,
        detail: { format: parsed.format, imported: fresh.length, unchanged, blocked: fresh.filter((d) => d.blocked).length },
      });
      return { imported: fresh.length, unchanged, refused, dryRun: false };
    });
  }

  /** A device of the file against the registry: new, already there exactly so, or refused. */
  #check(d: ImportDevice): 'new' | 'unchanged' | ImportRefusal {
    const refuse = (code: ImportRefusal['code'], detail: string): ImportRefusal => ({ id: d.id, code, detail });
    const holder = this.deviceIdOfNumId(d.numId);
    if (holder !== null && holder !== d.id) return refuse('num_id_in_use', `numId ${d.numId} belongs to device ${holder}`);
    for (const c of d.credentials) {
      const owner = this.#ctx.stmt('SELECT principal FROM credentials WHERE fingerprint = ?').pluck().get(c.key.fingerprint) as string | undefined;
      if (owner !== undefined && owner !== d.id) return refuse('key_in_use', `the key with fingerprint ${c.key.fingerprint} belongs to another principal`);
    }
    const row = this.#ctx.stmt('SELECT blocked, metadata FROM devices WHERE id = ?').get(d.id) as { blocked: number; metadata: string } | undefined;
    if (row === undefined) return 'new';
    return this.#sameAsStored(d, row) ? 'unchanged' : refuse('device_exists', 'registered already, differently; an import never overwrites a device');
  }

  #sameAsStored(d: ImportDevice, row: { blocked: number; metadata: string }): boolean {
    const b = this.binding(d.id);
    if (b === null || b.project !== d.binding.project || b.location !== d.binding.location || b.registry !== d.binding.registry || b.numId !== d.numId) return false;
    if ((row.blocked === 1) !== d.blocked) return false;
    if (canonicalJson(JSON.parse(row.metadata)) !== canonicalJson(d.metadata ?? {})) return false;
    const stored = this.#credentials.list(d.id).map((c) => `${c.fingerprint}/${c.expiresAt}`).sort();
    const given = d.credentials.map((c) => `${c.key.fingerprint}/${c.expiresAt}`).sort();
    if (stored.join(',') !== given.join(',')) return false;
    const config = this.config(d.id);
    if (d.config === null) return config === null;
    return config !== null && config.version === (d.config.version ?? 1) && config.data.equals(d.config.data);
  }

  #insert(d: ImportDevice): void {
    const now = this.#ctx.clock();
    this.#ctx.stmt('INSERT INTO devices (id, blocked, metadata, created_at) VALUES (?, ?, ?, ?)').run(d.id, d.blocked ? 1 : 0, JSON.stringify(d.metadata ?? {}), now);
    for (const c of d.credentials) {
      // the import's expiry, never a certificate's own notAfter (docs/migrating-from-cloud-iot-core.md §The formats)
      this.#credentials.insert({ kind: 'device', deviceId: d.id }, { fingerprint: c.key.fingerprint, spkiDer: c.key.spkiDer, expiresAt: null }, c.expiresAt, true);
    }
    this.#ctx
      .stmt('INSERT INTO gcp_devices (device_id, project, location, registry, num_id) VALUES (?, ?, ?, ?, ?)')
      .run(d.id, d.binding.project, d.binding.location, d.binding.registry, d.numId);
    if (d.config !== null) {
      this.#ctx
        .stmt('INSERT INTO device_config (device_id, version, config, updated_at, data) VALUES (?, ?, ?, ?, ?)')
        .run(d.id, d.config.version ?? 1, nativeViewOf(d.config.data), now, d.config.data);
    }
    this.#ctx.emit({ type: 'principal_created', principal: d.id });
  }
}
