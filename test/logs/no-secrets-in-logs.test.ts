import { describe, expect, it } from '@jest/globals';
import { readLedger, scanForSecrets } from '../support/secret-scan.ts';

// `npm run test:log-secrets`: after a test run with TESSERA_SECRET_LEDGER=<dir> (test/support/
// secret-ledger.ts), no secret any test saw minted or sent may appear in any log line of any
// Tessera the tests started. It fails on an empty or missing ledger, so that it cannot pass by
// having nothing to check. `npm test` leaves this file out (it reads what a run left behind).

const dir = process.env.TESSERA_SECRET_LEDGER;

describe('secrets in the logs of a test run', () => {
  it('finds none of the recorded secrets in any captured log line', () => {
    if (!dir) throw new Error('TESSERA_SECRET_LEDGER is not set: run the tests with it first (see docs/development.md)');
    const { secrets, logFiles } = readLedger(dir);
    const started = performance.now();
    const result = scanForSecrets(secrets, logFiles);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`secret scan: ${result.secrets} secrets checked in ${result.lines} log lines (${(result.bytes / 1e6).toFixed(1)} MB, ${result.files} files) in ${seconds} s: ${result.findings.length} found`);
    expect(result.secrets).toBeGreaterThan(0);
    expect(result.lines).toBeGreaterThan(0);
    const found = result.findings.map((f) => `${f.kind} (sha256 ${f.digest}…, recorded by ${f.recordedBy}) ${f.form} in ${f.file}, line ${f.line}`);
    expect(found).toEqual([]);
  });
});
