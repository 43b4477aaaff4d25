import { servicePrincipal } from '@latchkey/device-sdk/protocol';
import type { RegistryContext } from './context.ts';
import { insertCredential, listCredentials } from './credentials.ts';
import { RegistryError } from './errors.ts';
import { all, get, json, run, sql, type Plan } from './plan.ts';
import type { NewService, ServiceAcl, ServiceRecord } from './types.ts';

interface ServiceRow {
  name: string;
  acl: string;
  created_at: number;
}

const Q = {
  // a name already taken inserts nothing: service_exists
  insert: sql`INSERT INTO services (name, acl, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
  delete: sql`DELETE FROM services WHERE name = ?`,
  one: sql`SELECT name, acl, created_at FROM services WHERE name = ?`,
  all: sql`SELECT name, acl, created_at FROM services ORDER BY name`,
};

function* recordOf(row: ServiceRow): Plan<ServiceRecord> {
  const principal = servicePrincipal(row.name);
  return { name: row.name, principal, acl: json<ServiceAcl>(row.acl), createdAt: row.created_at, credentials: yield* listCredentials(principal) };
}

/** Service accounts (protocol.md §Service accounts): a name, credentials and a topic ACL. */
export class ServiceStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** Rejects with `service_exists`, `key_in_use`. */
  create(input: NewService, actor: string): Promise<ServiceRecord> {
    return this.#ctx.write(function* (tx) {
      const createdAt = tx.now();
      const acl: ServiceAcl = { publish: [...input.acl.publish], subscribe: [...input.acl.subscribe] };
      if ((yield* run(Q.insert, input.name, JSON.stringify(acl), createdAt)) === 0) throw new RegistryError('service_exists', 'service exists');
      const credential = yield* insertCredential(tx, { kind: 'service', name: input.name }, input.key, input.expiresAt, true);
      const principal = servicePrincipal(input.name);
      tx.emit({ type: 'principal_created', principal });
      yield* tx.audit({ actor, action: 'service.create', target: principal, detail: { kid: credential.kid, acl } });
      return { name: input.name, principal, acl, createdAt, credentials: [credential] };
    });
  }

  find(name: string): Promise<ServiceRecord | null> {
    return this.#ctx.read(function* () {
      const row = yield* get<ServiceRow>(Q.one, name);
      return row === undefined ? null : yield* recordOf(row);
    });
  }

  /** Rejects with `service_not_found`. */
  async get(name: string): Promise<ServiceRecord> {
    const s = await this.find(name);
    if (s === null) throw new RegistryError('service_not_found', 'no such service account');
    return s;
  }

  /** Every service account, by name. */
  list(): Promise<ServiceRecord[]> {
    return this.#ctx.read(function* () {
      const out: ServiceRecord[] = [];
      for (const row of yield* all<ServiceRow>(Q.all)) out.push(yield* recordOf(row));
      return out;
    });
  }

  /** Deletes the account and its credentials; emits `principal_deleted`. Rejects with `service_not_found`. */
  async delete(name: string, actor: string): Promise<void> {
    await this.#ctx.write(function* (tx) {
      if ((yield* run(Q.delete, name)) === 0) throw new RegistryError('service_not_found', 'no such service account');
      tx.emit({ type: 'principal_deleted', principal: servicePrincipal(name) });
      yield* tx.audit({ actor, action: 'service.delete', target: servicePrincipal(name) });
    });
  }
}
