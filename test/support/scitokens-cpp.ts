import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

// The WLCG and SciTokens profiles' rules from an implementation that is not Tessera's: Debian's
// scitokens-cpp (package scitokens-cpp, .ci/run installs it): scitokens-verify checks a token's
// signature and profile, scitokens-test-access an access decision (authz, path).
//
// scitokens-cpp fetches an issuer's keys from <iss>/.well-known/openid-configuration over HTTPS
// only, with libcurl's built-in CA bundle, and keeps them in a SQLite key cache under
// $XDG_CACHE_HOME/scitokens/. The tests give each run a cache of its own, seeded with the JWKS
// Tessera publishes at its jwks_uri (what scitokens-cpp would have fetched): the programs then
// verify signatures with Tessera's published keys, and nothing of Tessera is weakened or bypassed.

export const SCITOKENS_VERIFY = '/usr/bin/scitokens-verify';
export const SCITOKENS_TEST_ACCESS = '/usr/bin/scitokens-test-access';

export interface ScitokensCpp {
  /** Whether scitokens-cpp accepts the token (signature, claims, profile). */
  verify(token: string): Promise<{ ok: boolean; output: string }>;
  /** scitokens-test-access's decision: may `token` (for `audience`) do `authz` on `path`? */
  testAccess(token: string, issuer: string, audience: string, authz: string, path: string): Promise<{ allowed: boolean; output: string }>;
  close(): void;
}

function run(program: string, args: string[], cacheHome: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', XDG_CACHE_HOME: cacheHome, HOME: cacheHome }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : NaN) : 0;
      if (Number.isNaN(code)) return reject(error!);
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** A scitokens-cpp whose key cache holds `jwks` for `issuer` (as a fetch from its jwks_uri would). */
export function scitokensCppTrusting(issuer: string, jwks: { keys: unknown[] }): ScitokensCpp {
  for (const program of [SCITOKENS_VERIFY, SCITOKENS_TEST_ACCESS]) {
    if (!existsSync(program)) throw new Error(`${program} is missing: install Debian's scitokens-cpp (.ci/run does).`);
  }
  const cacheHome = mkdtempSync(join(tmpdir(), 'tessera-scitokens-'));
  mkdirSync(join(cacheHome, 'scitokens'), { mode: 0o700 });
  const database = new DatabaseSync(join(cacheHome, 'scitokens', 'scitokens_cpp.sqllite'));
  try {
    // The table and the entry's shape are scitokens-cpp's own (src/scitokens_cache.cpp, 0.7.3).
    database.exec('CREATE TABLE IF NOT EXISTS keycache (issuer text UNIQUE PRIMARY KEY NOT NULL, keys text NOT NULL)');
    const now = Math.floor(Date.now() / 1000);
    const entry = JSON.stringify({ jwks, next_update: now + 3600, expires: now + 4 * 3600 });
    database.prepare('INSERT INTO keycache VALUES (?, ?)').run(issuer, entry);
  } finally {
    database.close();
  }
  return {
    async verify(token) {
      const { code, output } = await run(SCITOKENS_VERIFY, [token], cacheHome);
      return { ok: code === 0, output };
    },
    async testAccess(token, iss, audience, authz, path) {
      const { code, output } = await run(SCITOKENS_TEST_ACCESS, [token, iss, audience, authz, path], cacheHome);
      return { allowed: code === 0, output };
    },
    close() {
      rmSync(cacheHome, { recursive: true, force: true });
    },
  };
}

/** The installed scitokens-cpp's version (dpkg's), e.g. "0.7.3-1+b1". */
export function scitokensCppVersion(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('dpkg-query', ['-W', '-f', '${Version}', 'libscitokens0'], (error, stdout) => (error ? reject(error) : resolve(stdout.trim())));
  });
}
