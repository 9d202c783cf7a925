import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // __test__/{unit,compliance,e2e,stress}/ (see __test__/README.md)
    include: ['__test__/**/*.test.{ts,mts,mjs,js}'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Native addon + real services: run files in forks, a few at a time.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
})
