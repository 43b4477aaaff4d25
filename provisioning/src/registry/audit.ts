import type { RegistryContext } from './context.ts';
import { all, json, same, sql } from './plan.ts';
import type { AuditEntry, JsonObject, NewAuditEntry } from './types.ts';

interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: string;
}

const COLUMNS = 'seq, at, actor, action, target, detail';
const Q = {
  page: sql`SELECT ${same(COLUMNS)} FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?`,
  byTarget: sql`SELECT ${same(COLUMNS)} FROM audit_log WHERE target = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
};

/** The audit log: admin actions, enrollments, refused connects with their internal reason. */
export class AuditStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  /** Appends one entry on its own (for actions that change nothing else, e.g. a command sent). */
  async record(entry: NewAuditEntry): Promise<void> {
    await this.#ctx.write((tx) => tx.audit(entry));
  }

  /** Newest first; `target` filters by device id or `svc:{name}`; `before` is an exclusive `seq` cursor. */
  async list(opts: { limit: number; target?: string | null; before?: number | null }): Promise<AuditEntry[]> {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new TypeError('limit must be a positive integer');
    const target = opts.target ?? null;
    const before = opts.before ?? Number.MAX_SAFE_INTEGER;
    const rows = await this.#ctx.read(() =>
      target === null ? all<AuditRow>(Q.page, before, opts.limit) : all<AuditRow>(Q.byTarget, target, before, opts.limit),
    );
    return rows.map((r) => ({ ...r, detail: json<JsonObject>(r.detail) }));
  }
}
