/** Jest runs the TypeScript sources as ESM through ts-jest. Type checking is `npm run typecheck`
 * (tsc over src and test), so ts-jest only transpiles here: that keeps a test run fast. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  // The workspace packages run from their sources, as `node --conditions=tessera-source` runs them.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1', '^@tessera/(verifier|client)$': '<rootDir>/packages/$1/src/index.ts' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/packages/*/test/**/*.test.ts'],
  // The resilience scenarios (kill Redis, stop PostgreSQL under load) run apart: npm run test:resilience.
  // The log scan reads what a run left behind: npm run test:log-secrets.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/resilience/', '<rootDir>/test/logs/no-secrets-in-logs.test.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  // With TESSERA_SECRET_LEDGER set, records the secrets the tests see (test/support/secret-ledger.ts).
  setupFilesAfterEnv: ['<rootDir>/test/support/secret-ledger-setup.ts'],
  testTimeout: 20000,
};
