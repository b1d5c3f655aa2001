/**
 * Jest: TypeScript through swc (type checking is `tsc --noEmit`, run by `npm test` first).
 * Two projects: `fast` (test/fast: workflows on Temporal's time-skipping test server with stub
 * activities; no root, no test bed) and `bed` (everything else: one real fleet and one Temporal
 * dev server, started by its globalSetup). `npm test` runs both; `npm run test:fast` the first.
 */
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  // TypeScript first: cli/qm resolves to qm.ts, not the bin's qm.cjs launcher beside it
  moduleFileExtensions: ['ts', 'js', 'cjs', 'mjs', 'json', 'node'],
};

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'fast',
      testMatch: ['<rootDir>/test/fast/**/*.test.ts'],
      globalSetup: '<rootDir>/test/fast/globalSetup.ts',
      globalTeardown: '<rootDir>/test/fast/globalTeardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/fast/setup.ts'],
    },
    {
      ...common,
      displayName: 'bed',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/fast/'],
      globalSetup: '<rootDir>/test/setup/globalSetup.ts',
      globalTeardown: '<rootDir>/test/setup/globalTeardown.ts',
    },
  ],
  // Tests share one real fleet and one Temporal server: run files one at a time (2 cores).
  maxWorkers: 1,
  // global only (jest ignores it in a project)
  testTimeout: 120000,
  verbose: true,
};
