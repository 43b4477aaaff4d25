/** Small async helpers of the fleet runner. */

/**
 * Runs `fn` over `items`, `limit` at a time. An item whose `fn` rejects with an error `isExpected`
 * accepts yields null; any other error rejects the whole run.
 *
 * @example
 * ```ts
 * await inParallel(ids, 16, (id) => api.deleteDevice(id), (e) => e instanceof SimulatorError);
 * ```
 */
export async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
  isExpected: (err: unknown) => boolean,
): Promise<(R | null)[]> {
  const out: (R | null)[] = new Array<R | null>(items.length).fill(null);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        if (!isExpected(err)) throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Resolves after `ms`, or as soon as `signal` aborts.
 *
 * @example
 * ```ts
 * await sleep(30_000, controller.signal);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
