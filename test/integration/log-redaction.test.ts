import { describe, expect, it } from '@jest/globals';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// A credential sent in a query string never reaches the log, whatever the spelling of its
// parameter's name: request lines carry the path and the parameter names only.

const NAMES = ['password', 'access_token', 'refresh_token', 'token', 'client_secret', 'code', 'device_code', 'user_code', 'key'];

/** The name as sent: plain, one character percent-encoded, all of it encoded, in mixed case. */
function spellings(name: string): string[] {
  const encoded = [...name].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');
  const mixed = [...name].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('');
  return [name, `${name.slice(0, -1)}%${name.charCodeAt(name.length - 1).toString(16)}`, encoded, mixed];
}

describe('request logs and credentials in query strings', () => {
  const suite = tesseraForSuite();

  it('logs no value of any parameter, in any encoding, repeated or not', async () => {
    const secrets: string[] = [];
    let n = 0;
    for (const name of NAMES) {
      for (const spelling of spellings(name)) {
        const secret = `SECRET${(n += 1)}x${Math.random().toString(36).slice(2)}`;
        const repeated = `REPEAT${n}x${Math.random().toString(36).slice(2)}`;
        secrets.push(secret, repeated);
        const query = `?${spelling}=${secret}&${spelling}=${repeated}`;
        await fetch(`${suite.tessera.url}/api/v1/me${query}`);
        await fetch(`${suite.tessera.url}/users/admin/login${query}`, { method: 'POST' });
      }
    }
    // A credential pasted as a parameter's name is not logged either.
    const pasted = `tsr_pat_${'A'.repeat(38)}`;
    await fetch(`${suite.tessera.url}/api/v1/me?${pasted}`);
    secrets.push(pasted);

    const logged = suite.tessera.logs.text;
    expect(logged).toMatch(/"url":"\/api\/v1\/me\?access_token&access_token"/);
    expect(logged).toMatch(/"url":"\/users\/admin\/login\?password&password"/);
    expect(secrets.filter((secret) => logged.includes(secret))).toEqual([]);
  });
});
