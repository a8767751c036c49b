import { describe, expect, it } from '@jest/globals';
import type { Request } from 'express';
import { presentedCredential, type CredentialRequest, type CredentialSources } from '../../../src/credentials/presented-credential.ts';
import { tokenFormat } from '../../../src/credentials/token-format.ts';
import { presentedCredential as verifierCredential } from '../../../packages/verifier/src/credentials.ts';

// One order for every reader of a presented credential: the server's (src/credentials/) and the
// published verifier's own copy must find the same credential in the same request.

const SESSION = tokenFormat.generate('session');
const PAT = tokenFormat.generate('personal_access_token');
const OTHER_SESSION = tokenFormat.generate('session');

/** The verifier's sources, as its options name them (aliases: x-archivesspace-session). */
const VERIFIER_SOURCES: CredentialSources = {
  apiKey: { keyHeader: 'x-api-key', userHeader: 'x-api-user' },
  bearer: 'any',
  sessionHeaders: ['x-session', 'x-archivesspace-session'],
  query: 'url',
};

const request = (headers: Record<string, string>, url = '/api/thing'): CredentialRequest => ({ headers, originalUrl: url, url });

const TABLE: Array<[string, CredentialRequest]> = [
  ['nothing', request({})],
  ['the API-key pair', request({ 'x-api-key': ` ${PAT} `, 'x-api-user': ' alice ' })],
  ['an API key without its user', request({ 'x-api-key': PAT })],
  ['a blank API key', request({ 'x-api-key': '  ', authorization: `Bearer ${PAT}` })],
  ['the API-key pair before Bearer', request({ 'x-api-key': PAT, 'x-api-user': 'alice', authorization: `Bearer ${SESSION}` })],
  ['Bearer in any case', request({ authorization: `bEaReR ${PAT}` })],
  ['Bearer with trailing space', request({ authorization: `Bearer ${PAT}  ` })],
  ['a malformed Bearer', request({ authorization: `Bearer ${PAT} extra`, 'x-session': SESSION })],
  ['Basic is not a credential here', request({ authorization: 'Basic YTpi' })],
  ['Bearer before X-Session', request({ authorization: `Bearer ${SESSION}`, 'x-session': OTHER_SESSION })],
  ['X-Session', request({ 'x-session': ` ${SESSION}` })],
  ['X-Session before its alias', request({ 'x-session': SESSION, 'x-archivesspace-session': OTHER_SESSION })],
  ['an alias', request({ 'x-archivesspace-session': SESSION })],
  ['a blank X-Session, then the alias', request({ 'x-session': ' ', 'x-archivesspace-session': SESSION })],
  ['?access_token=', request({}, `/api/thing?access_token=${PAT}`)],
  ['the first of two ?access_token=', request({}, `/api/thing?access_token=${PAT}&access_token=${SESSION}`)],
  ['an empty ?access_token=', request({}, '/api/thing?access_token=')],
  ['a header before the query', request({ 'x-session': SESSION }, `/api/thing?access_token=${PAT}`)],
  ['a value that is no Tessera token', request({ authorization: 'Bearer opaque-oauth-token' })],
];

describe('the presented credential', () => {
  it('is found as @tessera/verifier finds it, on every request of the table', () => {
    for (const [what, req] of TABLE) {
      const server = presentedCredential(req, VERIFIER_SOURCES);
      const verifier = verifierCredential(req as unknown as Request, { apiKeyHeader: 'x-api-key', apiUserHeader: 'x-api-user', sessionHeaders: ['x-session', 'x-archivesspace-session'] });
      expect({ what, found: server }).toEqual({ what, found: verifier });
    }
  });

  it('takes only the sources a route accepts, in the one order', () => {
    const cookie = `theme=dark; tessera_session=${encodeURIComponent(SESSION)}`;
    const withCookie: CredentialSources = { ...VERIFIER_SOURCES, cookie: true };
    expect(presentedCredential(request({ cookie }), withCookie)).toEqual({ token: SESSION, source: 'cookie' });
    expect(presentedCredential(request({ cookie }), VERIFIER_SOURCES)).toBeUndefined();
    expect(presentedCredential(request({ cookie, 'x-session': OTHER_SESSION }), withCookie)).toEqual({ token: OTHER_SESSION, source: 'session_header' });
    expect(presentedCredential(request({ cookie }, `/x?access_token=${PAT}`), withCookie)).toEqual({ token: PAT, source: 'query' });

    // Sessions only: a Bearer holding anything else is passed over; no API key, no query.
    const sessionsOnly: CredentialSources = { bearer: 'session', sessionHeaders: ['x-session'] };
    expect(presentedCredential(request({ authorization: `Bearer ${PAT}`, 'x-session': SESSION }), sessionsOnly)).toEqual({ token: SESSION, source: 'session_header' });
    expect(presentedCredential(request({ authorization: `Bearer ${PAT}` }), sessionsOnly)).toBeUndefined();
    expect(presentedCredential(request({ authorization: `Bearer ${SESSION}`, 'x-session': OTHER_SESSION }), sessionsOnly)).toEqual({ token: SESSION, source: 'authorization' });
    expect(presentedCredential(request({ 'x-api-key': PAT, 'x-api-user': 'alice' }, `/x?access_token=${PAT}`), sessionsOnly)).toBeUndefined();

    // Forward-auth: the query of the forwarded URL, not of the request to /auth/verify.
    const forwarded: CredentialSources = { ...VERIFIER_SOURCES, query: 'forwarded' };
    expect(presentedCredential(request({}, `/auth/verify?access_token=${PAT}`), forwarded)).toBeUndefined();
    expect(presentedCredential(request({ 'x-original-uri': `/records?access_token=${PAT}` }), forwarded)).toEqual({ token: PAT, source: 'query' });
    expect(presentedCredential(request({ 'x-original-uri': '/records', 'x-forwarded-uri': `/records?access_token=${SESSION}` }), forwarded)).toEqual({ token: SESSION, source: 'query' });
  });
});
