import { ProtocolError } from '@latchkey/device-sdk/protocol';

/** One named step of a flow; throws (or rejects) to stop it. */
export type Step<S> = (subject: S) => void | Promise<void>;

/**
 * Runs `steps` in order on `subject` and calls `done` exactly once: with null when every step
 * passed, with the first error thrown or rejected, or with a `ProtocolError('auth_timeout')`
 * when an asynchronous step has not settled within `timeoutMs` (design.md: an aedes hook that
 * never calls back keeps the socket open forever; one that throws kills the process).
 * Stays synchronous while the steps are synchronous; never throws itself.
 *
 * @example
 * ```ts
 * runSteps([checkClientId, verify, attach], attempt, 5000, (err) => err ? refuse(err) : accept());
 * ```
 */
export function runSteps<S>(steps: readonly Step<S>[], subject: S, timeoutMs: number, done: (err: unknown) => void): void {
  let settled = false;
  let timer: NodeJS.Timeout | null = null;
  const finish = (err: unknown): void => {
    if (settled) return;
    settled = true;
    if (timer !== null) clearTimeout(timer);
    try {
      done(err);
    } catch {
      // `done` belongs to the caller; its failure must not re-enter this flow
    }
  };
  const continueFrom = (index: number): void => {
    for (let i = index; i < steps.length; i++) {
      if (settled) return;
      let result: void | Promise<void>;
      try {
        result = (steps[i] as Step<S>)(subject);
      } catch (err) {
        finish(err ?? new Error('step failed'));
        return;
      }
      if (result instanceof Promise) {
        timer ??= setTimeout(() => finish(new ProtocolError('auth_timeout', 'authentication did not finish in time')), timeoutMs);
        result.then(
          () => continueFrom(i + 1),
          (err: unknown) => finish(err ?? new Error('step failed')),
        );
        return;
      }
    }
    finish(null);
  };
  continueFrom(0);
}
