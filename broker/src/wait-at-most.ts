/**
 * Waits for `work` to settle or `ms` to pass, whichever is first; the timer is cleared either way.
 * A rejection of `work` within the time is passed on. For the bounded steps of a close
 * (docs/operations.md: shutdown within 5 s).
 *
 * @example
 * ```ts
 * await waitAtMost(new Promise<void>((resolve) => aedes.close(() => resolve())), 4_000);
 * ```
 */
export async function waitAtMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
