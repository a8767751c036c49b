/** Jest runs the TypeScript sources as ESM through ts-jest. Type checking is `npm run typecheck`
 * (tsc over src and test), so ts-jest only transpiles here: that keeps a test run fast. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // The resilience scenarios (kill Redis, stop PostgreSQL under load) run apart: npm run test:resilience.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/resilience/'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  testTimeout: 20000,
};
