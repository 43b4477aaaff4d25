import type { Dialect, Plan, Query } from './plan.ts';

/**
 * Executes plans on one backend (plan.ts). `write` runs a plan in one transaction and may call
 * `plan` again when PostgreSQL asks for a retry; `read` runs one outside a transaction. Both reject
 * with the driver's own error: the registry context maps it (errors.ts), so nothing above the
 * registry ever sees a SqliteError or a PostgreSQL error.
 */
export interface Runner {
  readonly dialect: Dialect;
  write<T>(plan: () => Plan<T>): Promise<T>;
  read<T>(plan: () => Plan<T>): Promise<T>;
  /** true when the database answers (readiness) */
  ping(): Promise<boolean>;
  readonly open: boolean;
  close(): Promise<void>;
}

/**
 * Drives a plan to its end with `exec` answering each query. A query that fails ends the plan (its
 * `finally` blocks run) and the error propagates: a plan never sees a database error (plan.ts).
 */
export function driveSync<T>(plan: Plan<T>, exec: (q: Query) => unknown): T {
  let step = plan.next();
  while (step.done !== true) {
    let result: unknown;
    try {
      result = exec(step.value);
    } catch (e) {
      plan.return(undefined as T);
      throw e;
    }
    step = plan.next(result);
  }
  return step.value;
}

/** `driveSync` with an asynchronous `exec`. */
export async function driveAsync<T>(plan: Plan<T>, exec: (q: Query) => Promise<unknown>): Promise<T> {
  let step = plan.next();
  while (step.done !== true) {
    let result: unknown;
    try {
      result = await exec(step.value);
    } catch (e) {
      plan.return(undefined as T);
      throw e;
    }
    step = plan.next(result);
  }
  return step.value;
}
