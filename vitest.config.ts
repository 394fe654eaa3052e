import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addon + MsQuic threads: each test file in its own process.
    pool: 'forks',
    // Memory tests collect garbage before they measure, so that only what is really held counts.
    poolOptions: { forks: { execArgv: ['--expose-gc'] } },
    // One file at a time: on 2 cores a second file starves the lossy-relay and worker-teardown
    // tests of CPU (the relay then drops far more than its 1%).
    maxWorkers: 1,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 30_000
  }
})
