import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { LedgerSecret } from '../support/secret-ledger.ts';
import { scanForSecrets } from '../support/secret-scan.ts';

// The scanner behind `npm run test:log-secrets`, on planted secrets: it must find each one in
// whatever form a log would carry it, say where, and never repeat the value.

describe('the log secret scanner', () => {
  let dir: string;
  const token = `tsr_pat_${randomBytes(20).toString('base64url')}`;
  const password = 'p@ss word/with+signs';
  const quoted = 'a "quoted" secret value';
  const absent = randomBytes(24).toString('base64url');
  const secrets: LedgerSecret[] = [
    { kind: 'personal_token', value: token, test: 'planted.test.ts' },
    { kind: 'password', value: password, test: 'planted.test.ts' },
    { kind: 'client_secret', value: quoted, test: 'planted.test.ts' },
    { kind: 'access_token', value: absent, test: 'planted.test.ts' },
  ];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-secret-scan-'));
    const filler = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ level: 30, msg: 'request', path: `/oauth/introspect/${i}`, token: 'tsr_pat_…' }));
    await writeFile(join(dir, 'clean.log'), `${filler.join('\n')}\n`);
    await writeFile(join(dir, 'leaky.log'), [...filler.slice(0, 10), `{"msg":"presented","authorization":"Bearer ${token}"}`, ...filler.slice(10, 20), `GET /login?password=${encodeURIComponent(password)}`, JSON.stringify({ secret: quoted }), token].join('\n'));
    // A secret at the very end of a file, without a newline, is found too.
    await writeFile(join(dir, 'tail.log'), `started\n${absent.slice(0, 8)} is not the whole of it\nends with ${password}`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds planted secrets as sent, percent-encoded and JSON-escaped, with the file and line, and nothing in a clean log', () => {
    const result = scanForSecrets(secrets, ['clean.log', 'leaky.log', 'tail.log'].map((name) => join(dir, name)));
    const where = result.findings.map((f) => `${f.kind} ${f.form} ${f.file}:${f.line}`).sort();
    expect(where).toEqual(['client_secret JSON-escaped leaky.log:23', 'password as sent tail.log:3', 'password percent-encoded leaky.log:22', 'personal_token as sent leaky.log:11'].sort());
    expect(result).toMatchObject({ secrets: 4, files: 3, lines: 2000 + 24 + 3 });
  });

  it('names a secret by a digest prefix, never by its value', () => {
    const { findings } = scanForSecrets(secrets, [join(dir, 'leaky.log')]);
    expect(findings.length).toBeGreaterThan(0);
    const text = JSON.stringify(findings);
    for (const secret of secrets) expect(text).not.toContain(secret.value);
    expect(findings[0]!.digest).toMatch(/^[0-9a-f]{12}$/);
  });
});
