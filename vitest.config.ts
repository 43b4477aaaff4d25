import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Two cores on CI: keep parallelism modest so timing-based session checks stay honest.
    maxWorkers: 2,
  },
});
