import { ProtocolError } from '@latchkey/device-sdk/protocol';

/** One named step of a flow; throws (or rejects) to stop it. */
export type Step<S> = (subject: S) => void | Promise<void>;

/**
 * Runs `steps` in order on `subject` and calls `done` exactly once: with null when every step
 * passed, with the first error thrown or rejected, or with a `ProtocolError('auth_timeout')`
 * when an asynchronous step has not settled within `timeoutMs` (architecture.md §Library facts: an aedes hook that
 * never calls back keeps the socket open forever; one that throws kills the process).
 * Stays synchronous while the steps are synchronous — and then allocates nothing (no closure,
 * no timer: the connect path) — and never throws itself. `done` gets the subject back, so a
 * caller can pass one shared function instead of a closure per run.
 *
 * @example
 * ```ts
 * runSteps([checkClientId, verify, attach], attempt, 5000, (err, a) => err ? refuse(a, err) : accept(a));
 * ```
 */
export function runSteps<S>(steps: readonly Step<S>[], subject: S, timeoutMs: number, done: (err: unknown, subject: S) => void): void {
  for (let i = 0; i < steps.length; i++) {
    let result: void | Promise<void>;
    try {
      result = (steps[i] as Step<S>)(subject);
    } catch (err) {
      callDone(done, err ?? new Error('step failed'), subject);
      return;
    }
    if (result instanceof Promise) {
      continueAsync(steps, i, result, subject, timeoutMs, done);
      return;
    }
  }
  callDone(done, null, subject);
}

/** `done` belongs to the caller; its failure must not re-enter this flow. */
function callDone<S>(done: (err: unknown, subject: S) => void, err: unknown, subject: S): void {
  try {
    done(err, subject);
  } catch {
    // swallowed on purpose (see above)
  }
}

/** The rest of the flow once step `index` returned `pending`: one timer bounds all of it. */
function continueAsync<S>(
  steps: readonly Step<S>[],
  index: number,
  pending: Promise<void>,
  subject: S,
  timeoutMs: number,
  done: (err: unknown, subject: S) => void,
): void {
  let settled = false;
  const finish = (err: unknown): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    callDone(done, err, subject);
  };
  const timer = setTimeout(() => finish(new ProtocolError('auth_timeout', 'authentication did not finish in time')), timeoutMs);
  const continueFrom = (from: number): void => {
    for (let i = from; i < steps.length; i++) {
      if (settled) return;
      let result: void | Promise<void>;
      try {
        result = (steps[i] as Step<S>)(subject);
      } catch (err) {
        finish(err ?? new Error('step failed'));
        return;
      }
      if (result instanceof Promise) {
        await_(result, i);
        return;
      }
    }
    finish(null);
  };
  const await_ = (p: Promise<void>, i: number): void => {
    p.then(
      () => continueFrom(i + 1),
      (err: unknown) => finish(err ?? new Error('step failed')),
    );
  };
  await_(pending, index);
}
