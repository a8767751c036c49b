import { describe, expect, it } from '@jest/globals';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// Requests a fuzzer found answered 500: malformed percent-encoding in a path parameter or a cookie,
// and a body whose Content-Encoding does not match it. Each is the client's mistake: a 4xx in the
// documented JSON shape, and nothing that keeps a browser from signing in again.

const MALFORMED_COOKIE = 'tessera_session=%E0%A4%A';

describe('malformed requests are refused as the client error they are', () => {
  const suite = tesseraForSuite();

  it.each([
    ['POST', '/users/%ZZ/login', 'password=whatever'],
    ['GET', '/interaction/%ff', undefined],
    ['DELETE', '/api/v1/sessions/%ff', undefined],
  ])('%s %s (bad percent-encoding in the path) answers 400', async (method, path, body) => {
    const res = await fetch(`${suite.tessera.url}${path}`, { method, ...(body ? { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}) });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ message: 'The URL holds malformed percent-encoding.', status: 400 });
  });

  it('a body that does not match its Content-Encoding answers 400', async () => {
    const res = await fetch(`${suite.tessera.url}/logout`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: '{}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: 'The request body could not be decoded.', status: 400 });
  });

  it('a malformed session cookie is no credential: 401, not 500', async () => {
    const res = await fetch(`${suite.tessera.url}/api/v1/me`, { headers: { cookie: MALFORMED_COOKIE } });
    expect(res.status).toBe(401);
  });

  it('a browser holding a malformed session cookie can still sign in', async () => {
    const form = await fetch(`${suite.tessera.url}/login`, { headers: { cookie: MALFORMED_COOKIE } });
    expect(form.status).toBe(200);
    const loginCsrf = form.headers.getSetCookie().map((c) => /^tessera_login_csrf=([^;]+)/.exec(c)?.[1]).find(Boolean);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1];
    expect(loginCsrf && csrf).toBeTruthy();
    const res = await fetch(`${suite.tessera.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tessera_login_csrf=${loginCsrf}; ${MALFORMED_COOKIE}` },
      body: new URLSearchParams({ username: 'admin', password: 'initial-admin-password', csrf: csrf!, next: '/settings/tokens' }).toString(),
    });
    expect(res.status).toBe(303);
    expect(res.headers.getSetCookie().some((c) => /^tessera_session=tsr_ses_/.test(c))).toBe(true);
  });

  it('nothing of the above was logged as an unhandled error', () => {
    expect(suite.tessera.logs.text).not.toMatch(/unhandled error/);
  });
});
