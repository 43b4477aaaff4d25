import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * Tests import the TypeScript sources: workspace packages resolve through their `@latchkey/source`
 * export condition (docs/architecture.md §Build), so a test never runs a stale dist/. Vitest runs
 * test files in Vite's server (SSR) environment, whose conditions replace the defaults: keep them.
 * Processes the tests start (the `latchkey` bin, the packed SDK) run the compiled dist/.
 */
export default defineConfig({
  ssr: { resolve: { conditions: ['@latchkey/source', ...defaultServerConditions] } },
  test: {
    include: ['test/**/*.test.ts'],
    // PostgreSQL and Redis for the tests that need them (test/helpers/services.ts)
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Two cores on CI: keep parallelism modest so timing-based session checks stay honest.
    maxWorkers: 2,
  },
});
