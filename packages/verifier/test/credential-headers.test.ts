import { afterAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTesseraVerifier, type TesseraVerifierOptions } from '../src/index.ts';

// credentialHeaders: 'discovery' against an authorization server answering as Tessera does (its
// discovery document and introspection), in a real express app: the verifier under test is real.
// test/integration/verifier-package.test.ts does the same against a real Tessera.

const ISSUER = 'https://auth.example.org';
const PAT = 'tessera_pat_opaque';
const ACTIVE = { active: true, sub: 'u1', username: 'curator', scope: 'read', credential_kind: 'personal_access_token', token_type: 'Bearer' };

function tesseraAnswering(document: Record<string, unknown>) {
  const asked: string[] = [];
  const answer: typeof fetch = async (input) => {
    const path = new URL(String(input)).pathname;
    asked.push(path);
    const body = path === '/.well-known/openid-configuration' ? { issuer: ISSUER, introspection_endpoint: `${ISSUER}/oauth/introspect`, ...document } : ACTIVE;
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  return { fetch: answer, asked };
}

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

async function api(options: Partial<TesseraVerifierOptions> & Pick<TesseraVerifierOptions, 'fetch'>) {
  const unavailable: string[] = [];
  const verifier = createTesseraVerifier({ issuer: ISSUER, clientId: 'records-api', clientSecret: 'secret', cache: false, onUnavailable: (error) => unavailable.push(error.message), ...options });
  const app = express();
  app.get('/whoami', verifier.authenticate(), (req, res) => res.json({ source: req.tessera!.source }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/whoami`;
  return { call: (headers: Record<string, string>) => fetch(url, { headers }), unavailable };
}

describe('@tessera/verifier: header names from the discovery document', () => {
  it('looks for the credential where the document says, and not under the default names', async () => {
    const tessera = tesseraAnswering({ tessera_session_header_aliases: ['X-Repo-Session'], tessera_api_key_header: 'X-Repo-Key', tessera_api_user_header: 'X-Repo-User' });
    const { call } = await api({ fetch: tessera.fetch, credentialHeaders: 'discovery' });
    const withKey = await call({ 'x-repo-key': PAT, 'x-repo-user': 'curator' });
    expect({ status: withKey.status, body: await withKey.json() }).toEqual({ status: 200, body: { source: 'api_key' } });
    expect((await call({ 'x-repo-session': PAT })).status).toBe(200);
    expect((await call({ 'x-session': PAT })).status).toBe(200);
    const defaults = await call({ 'x-api-key': PAT, 'x-api-user': 'curator' });
    expect({ status: defaults.status, body: await defaults.json() }).toEqual({ status: 401, body: { message: 'Authentication required.', status: 401 } });
    // The document is read once, not per request.
    expect(tessera.asked.filter((path) => path === '/.well-known/openid-configuration')).toHaveLength(1);
  });

  it('answers 503 and says why when the document does not publish the names (an older Tessera)', async () => {
    const { call, unavailable } = await api({ fetch: tesseraAnswering({}).fetch, credentialHeaders: 'discovery' });
    const answer = await call({ 'x-api-key': PAT, 'x-api-user': 'curator' });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(unavailable).toEqual([expect.stringMatching(/does not publish its credential header names/)]);
  });

  it('refuses a document whose names are not header names', async () => {
    const { call, unavailable } = await api({ fetch: tesseraAnswering({ tessera_session_header_aliases: ['X Session'], tessera_api_key_header: 'x-api-key', tessera_api_user_header: 'x-api-user' }).fetch, credentialHeaders: 'discovery' });
    expect((await call({ authorization: `Bearer ${PAT}` })).status).toBe(503);
    expect(unavailable).toEqual([expect.stringMatching(/unexpected document \(tessera_session_header_aliases has the wrong type\)/)]);
  });

  it('keeps the options\' names by default, and refuses names given twice', () => {
    const { fetch } = tesseraAnswering({});
    expect(() => createTesseraVerifier({ issuer: ISSUER, clientId: 'a', clientSecret: 'b', fetch, credentialHeaders: 'discovery', apiKeyHeader: 'X-Key' })).toThrow(/header names come from Tessera/);
    expect(() => createTesseraVerifier({ issuer: ISSUER, clientId: 'a', clientSecret: 'b', fetch, credentialHeaders: 'both' as 'discovery' })).toThrow(/must be 'options' or 'discovery'/);
  });

  it('with the default, never reads the names from the document', async () => {
    const tessera = tesseraAnswering({ tessera_session_header_aliases: [], tessera_api_key_header: 'x-repo-key', tessera_api_user_header: 'x-repo-user' });
    const { call } = await api({ fetch: tessera.fetch });
    expect((await call({ 'x-api-key': PAT, 'x-api-user': 'curator' })).status).toBe(200);
    expect((await call({ 'x-repo-key': PAT, 'x-repo-user': 'curator' })).status).toBe(401);
  });
});
