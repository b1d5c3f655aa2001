/** Jest: TypeScript through swc (type checking is `tsc --noEmit`, run by `npm test` first). */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  // TypeScript first: cli/qm resolves to qm.ts, not the bin's qm.cjs launcher beside it
  moduleFileExtensions: ['ts', 'js', 'cjs', 'mjs', 'json', 'node'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/setup/globalSetup.ts',
  globalTeardown: '<rootDir>/test/setup/globalTeardown.ts',
  // Tests share one real fleet and one Temporal server: run files one at a time (2 cores).
  maxWorkers: 1,
  testTimeout: 120000,
  verbose: true,
};
