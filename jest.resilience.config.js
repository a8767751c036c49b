import base from './jest.config.js';

/** The resilience scenarios (test/resilience/): Redis and PostgreSQL taken away under load, on every
 * Redis topology this machine runs. `npm run test:resilience`; `npm test` leaves them out. One file
 * at a time, so that the measured recovery times are not another scenario's load. */
export default {
  ...base,
  testMatch: ['<rootDir>/test/resilience/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 120_000,
  maxWorkers: 1,
};
