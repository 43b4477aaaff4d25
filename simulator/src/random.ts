/**
 * A small seeded PRNG (mulberry32) so simulated noise and random activity are reproducible:
 * the same seed and the same sequence of steps give the same outputs.
 */

/** Seeded random source. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  between(min: number, max: number): number;
  /** Normally distributed (Box–Muller). */
  normal(mean: number, sd: number): number;
  /** True with probability `p` (clamped to [0, 1]). */
  chance(p: number): boolean;
}

/**
 * Creates a deterministic random source.
 *
 * @example
 * ```ts
 * const rng = createRandom(seedFrom('t-0001'));
 * const noise = rng.normal(0, 0.05);
 * ```
 */
export function createRandom(seed: number): Random {
  if (!Number.isFinite(seed)) throw new TypeError('createRandom: seed must be a finite number');
  let a = seed >>> 0;
  const next = (): number => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    between: (min, max) => min + (max - min) * next(),
    normal: (mean, sd) => {
      const u = 1 - next(); // (0, 1]: log(u) is finite
      const v = next();
      return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    chance: (p) => next() < Math.min(1, Math.max(0, p)),
  };
}

/**
 * A 32-bit seed derived from a string (FNV-1a), e.g. from a device id.
 *
 * @example
 * ```ts
 * createRandom(seedFrom('lock-0007'));
 * ```
 */
export function seedFrom(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
