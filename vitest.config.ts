import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Lab tests create network namespaces and real traffic; two cores, keep it sane.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
