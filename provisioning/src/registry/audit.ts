import type { RegistryContext } from './context.ts';
import type { AuditEntry, JsonObject, NewAuditEntry } from './types.ts';

interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: string;
}

/** The audit log: admin actions, enrollments, refused connects with their internal reason. */
export class AuditStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** Appends one entry on its own (for actions that change nothing else, e.g. a command sent). */
  record(entry: NewAuditEntry): void {
    this.#ctx.write(() => this.#ctx.audit(entry));
  }

  /** Newest first; `target` filters by device id or `svc:{name}`; `before` is an exclusive `seq` cursor. */
  list(opts: { limit: number; target?: string | null; before?: number | null }): AuditEntry[] {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new TypeError('limit must be a positive integer');
    return this.#ctx.read(() => {
      const target = opts.target ?? null;
      const before = opts.before ?? Number.MAX_SAFE_INTEGER;
      const rows = (
        target === null
          ? this.#ctx.stmt('SELECT seq, at, actor, action, target, detail FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?').all(before, opts.limit)
          : this.#ctx
              .stmt('SELECT seq, at, actor, action, target, detail FROM audit_log WHERE target = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
              .all(target, before, opts.limit)
      ) as AuditRow[];
      return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as JsonObject }));
    });
  }
}
