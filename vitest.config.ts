import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'lambdas/**/*.test.ts', 'core/**/*.test.ts', 'cli/**/*.test.ts'],
    // Synthesizing the app (and bundling Lambdas with esbuild) takes seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Both cores: most files wait on PostgreSQL, MariaDB or moto, each in its own databases/resources.
    maxWorkers: 2,
    // A private TMPDIR per run, checked at its end for leftover cofre-* folders; MariaDB's max_allowed_packet
    // raised for the whole run; one local AWS (moto) for every file.
    globalSetup: [
      'test/helpers/temp-global-setup.ts',
      'test/helpers/global-setup.ts',
      'test/helpers/moto-global-setup.ts',
    ],
  },
});
