import { servicePrincipal } from '@latchkey/device-sdk/protocol';
import type { RegistryContext } from './context.ts';
import type { CredentialStore } from './credentials.ts';
import { RegistryError } from './errors.ts';
import type { NewService, ServiceAcl, ServiceRecord } from './types.ts';

interface ServiceRow {
  name: string;
  acl: string;
  created_at: number;
}

/** Service accounts (protocol.md §Service accounts): a name, credentials and a topic ACL. */
export class ServiceStore {
  readonly #ctx: RegistryContext;
  readonly #credentials: CredentialStore;

  constructor(ctx: RegistryContext, credentials: CredentialStore) {
    this.#ctx = ctx;
    this.#credentials = credentials;
  }

  /** Throws `service_exists`, `key_in_use`. */
  create(input: NewService, actor: string): ServiceRecord {
    return this.#ctx.write(() => {
      const createdAt = this.#ctx.clock();
      const acl: ServiceAcl = { publish: [...input.acl.publish], subscribe: [...input.acl.subscribe] };
      this.#ctx.stmt('INSERT INTO services (name, acl, created_at) VALUES (?, ?, ?)').run(input.name, JSON.stringify(acl), createdAt);
      const credential = this.#credentials.insert({ kind: 'service', name: input.name }, input.key, input.expiresAt, true);
      const principal = servicePrincipal(input.name);
      this.#ctx.emit({ type: 'principal_created', principal });
      this.#ctx.audit({ actor, action: 'service.create', target: principal, detail: { kid: credential.kid, acl } });
      return { name: input.name, principal, acl, createdAt, credentials: [credential] };
    });
  }

  find(name: string): ServiceRecord | null {
    return this.#ctx.read(() => {
      const row = this.#ctx.stmt('SELECT name, acl, created_at FROM services WHERE name = ?').get(name) as ServiceRow | undefined;
      return row === undefined ? null : this.#record(row);
    });
  }

  /** Throws `service_not_found`. */
  get(name: string): ServiceRecord {
    const s = this.find(name);
    if (s === null) throw new RegistryError('service_not_found', 'no such service account');
    return s;
  }

  /** Every service account, by name. */
  list(): ServiceRecord[] {
    return this.#ctx.read(() =>
      (this.#ctx.stmt('SELECT name, acl, created_at FROM services ORDER BY name').all() as ServiceRow[]).map((r) =>
        this.#record(r),
      ),
    );
  }

  /** Deletes the account and its credentials; emits `principal_deleted`. Throws `service_not_found`. */
  delete(name: string, actor: string): void {
    this.#ctx.write(() => {
      const info = this.#ctx.stmt('DELETE FROM services WHERE name = ?').run(name);
      if (info.changes === 0) throw new RegistryError('service_not_found', 'no such service account');
      this.#ctx.emit({ type: 'principal_deleted', principal: servicePrincipal(name) });
      this.#ctx.audit({ actor, action: 'service.delete', target: servicePrincipal(name) });
    });
  }

  /** The ACL of a service account, or null. */
  acl(name: string): ServiceAcl | null {
    const raw = this.#ctx.stmt('SELECT acl FROM services WHERE name = ?').pluck().get(name) as string | undefined;
    return raw === undefined ? null : (JSON.parse(raw) as ServiceAcl);
  }

  #record(row: ServiceRow): ServiceRecord {
    const principal = servicePrincipal(row.name);
    return {
      name: row.name,
      principal,
      acl: JSON.parse(row.acl) as ServiceAcl,
      createdAt: row.created_at,
      credentials: this.#credentials.list(principal),
    };
  }
}
