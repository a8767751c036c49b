import base from './jest.config.js';

/** `npm run test:log-secrets`: the scanner's own tests, then the scan of the secret ledger a test run
 * left in TESSERA_SECRET_LEDGER (test/logs/). No services, nothing recorded. */
export default {
  ...base,
  testMatch: ['<rootDir>/test/logs/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: undefined,
  setupFilesAfterEnv: [],
  testTimeout: 120_000,
};
