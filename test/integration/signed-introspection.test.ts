import { describe, expect, it } from '@jest/globals';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { createTesseraVerifier, type TesseraPrincipal } from '@tessera/verifier';
import { documentedFetch } from '../support/documented-answers.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// RFC 9701 signed introspection answers, checked by clients that are not Tessera's code:
// openid-client (tokenIntrospection with non-repudiation checks against the served JWKS), jose
// against the served JWKS, and @tessera/verifier in a real express API.

const JWT_TYPE = 'application/token-introspection+jwt';
const by = { actor: 'test' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('signed introspection answers (RFC 9701)', () => {
  const suite = tesseraForSuite({}, {}, { issuerOnItsPort: true });
  let secret: string;
  let pat: string;

  const issuer = () => suite.issuer.origin;
  const rawIntrospect = (token: string, accept?: string, authorization = basic('records-api', secret)) =>
    fetch(`${issuer()}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization, ...(accept === undefined ? {} : { accept }) }, body: new URLSearchParams({ token }) });
  const servedKeys = async () => (await (await fetch(`${issuer()}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  /** Verified with jose against the JWKS Tessera serves: nothing of Tessera's signing code. */
  const verifyServed = async (jwt: string) =>
    jwtVerify(jwt, createLocalJWKSet(await servedKeys()), { issuer: issuer(), audience: 'records-api', typ: 'token-introspection+jwt', requiredClaims: ['iat'] });
  const plainAnswer = async (token: string) => (await (await rawIntrospect(token)).json()) as Record<string, unknown>;

  /** openid-client as the resource server, asking for signed answers and checking their signatures. */
  async function openidClient() {
    const config = await oidc.discovery(suite.issuer, 'records-api', { introspection_signed_response_alg: 'RS256' }, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    oidc.enableNonRepudiationChecks(config);
    return config;
  }

  it('is advertised in the discovery document with the signing algorithm, and no encryption', async () => {
    const { tessera } = suite;
    secret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    await tessera.core.accounts.createUser({ username: 'dana', email: 'dana@example.org', password: 'dana-password', scopes: ['read'] }, by);
    const dana = (await tessera.core.accounts.findUser('dana'))!;
    pat = (await tessera.core.personalTokens.create(dana, { name: 'signed answers', scopes: ['read'], expiresInDays: 30 }, by)).token;
    const discovery = (await (await fetch(`${issuer()}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.introspection_signing_alg_values_supported).toEqual([tessera.config.oauth.signingAlgorithm]);
    expect(discovery).not.toHaveProperty('introspection_encryption_alg_values_supported');
    expect(discovery).not.toHaveProperty('introspection_encryption_enc_values_supported');
  });

  it('answers an active personal token to openid-client as a signed JWT holding exactly the JSON answer', async () => {
    const answer = await oidc.tokenIntrospection(await openidClient(), pat);
    expect(answer).toEqual(await plainAnswer(pat));
    expect(answer).toMatchObject({ active: true, credential_kind: 'personal_access_token', username: 'dana' });
    // openid-client did read a JWT: pinned to another algorithm, it refuses the very same answer.
    const pinned = await oidc.discovery(suite.issuer, 'records-api', { introspection_signed_response_alg: 'ES256' }, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    const refusal = (await oidc.tokenIntrospection(pinned, pat).catch((error: unknown) => error)) as Error;
    expect((refusal.cause as Error).message).toBe('unexpected JWT "alg" header parameter');
  });

  it('answers an access token and an inactive token the same way', async () => {
    const serviceSecret = (await suite.tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    const service = await oidc.discovery(suite.issuer, 'harvester', undefined, oidc.ClientSecretBasic(serviceSecret), { execute: [oidc.allowInsecureRequests] });
    const { access_token: accessToken } = await oidc.clientCredentialsGrant(service, { scope: 'read' });
    const config = await openidClient();
    const active = await oidc.tokenIntrospection(config, accessToken);
    expect(active).toEqual(await plainAnswer(accessToken));
    expect(active).toMatchObject({ active: true, credential_kind: 'access_token', client_id: 'harvester' });
    expect(await oidc.tokenIntrospection(config, 'tsr_pat_not-a-token')).toEqual({ active: false });
  });

  it('sends the JWT no-store, typed, for the caller, with iss, aud, iat and token_introspection only', async () => {
    const before = Math.floor(Date.now() / 1000);
    const response = await rawIntrospect(pat, JWT_TYPE);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(JWT_TYPE);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const jwt = await response.text();
    const { payload, protectedHeader } = await verifyServed(jwt);
    expect(protectedHeader).toEqual({ alg: 'RS256', kid: (await servedKeys()).keys[0]!.kid, typ: 'token-introspection+jwt' });
    expect(Object.keys(payload).sort()).toEqual(['aud', 'iat', 'iss', 'token_introspection']);
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.iat).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(payload.token_introspection).toEqual(await plainAnswer(pat));
    // An inactive token: exactly {"active": false} inside, nothing else.
    expect((await verifyServed(await (await rawIntrospect('nothing-at-all', JWT_TYPE)).text())).payload.token_introspection).toEqual({ active: false });
  });

  it('chooses the signed answer by Accept and its weights, and JSON otherwise, unchanged', async () => {
    const cases: [string | undefined, 'jwt' | 'json'][] = [
      [undefined, 'json'],
      ['application/json', 'json'],
      ['*/*', 'json'],
      ['text/html', 'json'],
      [JWT_TYPE, 'jwt'],
      ['Application/Token-Introspection+JWT', 'jwt'],
      [`application/json;q=0.9, ${JWT_TYPE}`, 'jwt'],
      [`${JWT_TYPE}, application/json`, 'jwt'],
      [`${JWT_TYPE};q=0.5, application/json`, 'json'],
      [`${JWT_TYPE};q=0.5, */*;q=0.1`, 'jwt'],
      [`${JWT_TYPE};q=0.4, application/*;q=0.5`, 'json'],
      [`${JWT_TYPE};q=0`, 'json'],
      [`${JWT_TYPE};q=2, application/json;q=0.1`, 'json'],
      ['application/jwt', 'json'],
    ];
    const plain = await rawIntrospect(pat);
    const plainText = await plain.text();
    for (const [accept, expected] of cases) {
      const response = await rawIntrospect(pat, accept);
      const body = await response.text();
      const got = response.headers.get('content-type') === JWT_TYPE ? 'jwt' : 'json';
      expect({ accept, got }).toEqual({ accept, got: expected });
      if (expected === 'json') {
        expect(body).toBe(plainText);
        expect([...response.headers.keys()].filter((name) => !['date', 'x-request-id'].includes(name)).sort()).toEqual([...plain.headers.keys()].filter((name) => !['date', 'x-request-id'].includes(name)).sort());
      } else {
        expect((await verifyServed(body)).payload.token_introspection).toEqual(JSON.parse(plainText));
      }
    }
  });

  it('refuses as before, in JSON, a caller that does not authenticate', async () => {
    const response = await rawIntrospect(pat, JWT_TYPE, basic('records-api', 'wrong'));
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('signs with the new key after a rotation, which the served JWKS verifies by its kid', async () => {
    const rotation = await suite.tessera.core.signingKeys.rotate(by);
    // The node hears of the rotation through Redis: wait (bounded) for its JWKS to list the new key.
    for (let i = 0; i < 200 && !(await servedKeys()).keys.some((key) => key.kid === rotation.kid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await servedKeys()).keys.map((key) => key.kid)).toContain(rotation.kid);
    const jwt = await (await rawIntrospect(pat, JWT_TYPE)).text();
    expect(decodeProtectedHeader(jwt).kid).toBe(rotation.kid);
    expect((await verifyServed(jwt)).payload.token_introspection).toMatchObject({ active: true });
    expect(await oidc.tokenIntrospection(await openidClient(), pat)).toMatchObject({ active: true, username: 'dana' });
  });

  it('registers through the admin API a client naming the signing algorithm, and refuses another or encryption by name', async () => {
    const documented = documentedFetch(() => issuer());
    const login = await documented(`${issuer()}/users/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'initial-admin-password' }) });
    const session = String(((await login.json()) as { session: string }).session);
    const register = async (extra: Record<string, unknown>) => {
      const response = await documented(`${issuer()}/api/v1/admin/clients`, {
        method: 'POST',
        headers: { 'x-session': session, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Archive API', kind: 'resource_server', ...extra }),
      });
      return { status: response.status, body: (await response.json()) as { errors?: { field: string; message: string }[] } };
    };
    expect((await register({ introspection_signed_response_alg: 'RS256' })).status).toBe(201);
    const otherAlg = await register({ introspection_signed_response_alg: 'ES256' });
    expect(otherAlg.status).toBe(400);
    expect(otherAlg.body.errors).toEqual([expect.objectContaining({ field: 'introspection_signed_response_alg', message: expect.stringMatching(/signs introspection answers with RS256 only/) })]);
    const encrypted = await register({ introspection_encrypted_response_alg: 'RSA-OAEP-256', introspection_encrypted_response_enc: 'A128CBC-HS256' });
    expect(encrypted.status).toBe(400);
    expect(encrypted.body.errors?.map((field) => field.field).sort()).toEqual(['introspection_encrypted_response_alg', 'introspection_encrypted_response_enc']);
    expect(encrypted.body.errors?.[0]?.message).toMatch(/does not encrypt introspection answers/);
  });

  it('gives @tessera/verifier with signedIntrospection the verified JWT as proof', async () => {
    const verifier = createTesseraVerifier({ issuer: issuer(), clientId: 'records-api', clientSecret: secret, signedIntrospection: true });
    const plainVerifier = createTesseraVerifier({ issuer: issuer(), clientId: 'records-api', clientSecret: secret });
    const app = express();
    app.get('/records', verifier.requireScopes('read'), (req, res) => res.json(req.tessera));
    app.get('/plain', plainVerifier.requireScopes('read'), (req, res) => res.json(req.tessera));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const response = await fetch(`${api}/records`, { headers: { authorization: `Bearer ${pat}` } });
      expect(response.status).toBe(200);
      const principal = (await response.json()) as TesseraPrincipal;
      expect(principal).toMatchObject({ username: 'dana', tokenType: 'personal_access_token', verifiedBy: 'introspection' });
      const { payload } = await verifyServed(principal.introspectionJwt!);
      expect(payload.token_introspection).toEqual(await plainAnswer(pat));
      // Cached: the same proof again, without asking Tessera.
      expect(((await (await fetch(`${api}/records`, { headers: { authorization: `Bearer ${pat}` } })).json()) as TesseraPrincipal).introspectionJwt).toBe(principal.introspectionJwt);
      expect((await fetch(`${api}/records`, { headers: { authorization: 'Bearer tsr_pat_not-a-token' } })).status).toBe(401);
      // Without the option nothing changes: JSON, no proof.
      const plain = (await (await fetch(`${api}/plain`, { headers: { authorization: `Bearer ${pat}` } })).json()) as TesseraPrincipal;
      expect(plain).toMatchObject({ username: 'dana', verifiedBy: 'introspection' });
      expect(plain).not.toHaveProperty('introspectionJwt');
    } finally {
      verifier.close();
      plainVerifier.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('makes @tessera/verifier fail closed on a signed answer meant for another resource server, or altered', async () => {
    const archiveSecret = (await suite.tessera.core.clients.create({ clientId: 'archive-api', name: 'Archive API', kind: 'resource_server' }, by)).secret!;
    /** A verifier of records-api's whose introspection requests are answered by `answer` instead. */
    const verifierGiven = (answer: (init: RequestInit | undefined) => Promise<Response>) =>
      createTesseraVerifier({
        issuer: issuer(),
        clientId: 'records-api',
        clientSecret: secret,
        signedIntrospection: true,
        cache: false,
        fetch: async (input, init) => (String(input).endsWith('/oauth/introspect') ? answer(init) : fetch(input, init)),
      });
    // A genuine answer, validly signed by Tessera, but for archive-api (aud): not records-api's.
    const forArchive = verifierGiven(async (init) => rawIntrospect(new URLSearchParams(String(init!.body)).get('token')!, JWT_TYPE, basic('archive-api', archiveSecret)));
    // records-api's own answer with its claims altered after signing.
    const altered = verifierGiven(async (init) => {
      const jwt = await (await fetch(`${issuer()}/oauth/introspect`, init)).text();
      const [header, payload, signature] = jwt.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as { token_introspection: Record<string, unknown> };
      const changed = Buffer.from(JSON.stringify({ ...claims, token_introspection: { ...claims.token_introspection, scope: 'read admin' } })).toString('base64url');
      return new Response(`${header}.${changed}.${signature}`, { status: 200, headers: { 'content-type': JWT_TYPE } });
    });
    // A Tessera answering JSON to a verifier that asked for a signed answer.
    const unsigned = verifierGiven(async (init) => rawIntrospect(new URLSearchParams(String(init!.body)).get('token')!, 'application/json'));
    try {
      await expect(forArchive.verify(pat)).rejects.toThrow(/the signed introspection answer does not verify \(unexpected "aud" claim value\)/);
      await expect(altered.verify(pat)).rejects.toThrow(/the signed introspection answer does not verify \(signature verification failed\)/);
      await expect(unsigned.verify(pat)).rejects.toThrow(/asked for a signed answer, got application\/json/);
    } finally {
      for (const verifier of [forArchive, altered, unsigned]) verifier.close();
    }
  });
});

describe('signed introspection answers with another signing algorithm', () => {
  const suite = tesseraForSuite({ TESSERA_SIGNING_ALG: 'ES256' }, {}, { issuerOnItsPort: true });

  it('signs with oauth.signingAlgorithm, advertises it, and jose and openid-client verify the answers', async () => {
    const { tessera } = suite;
    const secret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    await tessera.core.accounts.createUser({ username: 'erin', password: 'erin-password', scopes: ['read'] }, by);
    const pat = (await tessera.core.personalTokens.create((await tessera.core.accounts.findUser('erin'))!, { name: 'es256', scopes: ['read'], expiresInDays: 1 }, by)).token;
    const discovery = (await (await fetch(`${suite.issuer.origin}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.introspection_signing_alg_values_supported).toEqual(['ES256']);
    const response = await fetch(`${suite.issuer.origin}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic('records-api', secret), accept: JWT_TYPE }, body: new URLSearchParams({ token: pat }) });
    const jwt = await response.text();
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'ES256', typ: 'token-introspection+jwt' });
    const keys = (await (await fetch(`${suite.issuer.origin}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(keys), { issuer: suite.issuer.origin, audience: 'records-api', typ: 'token-introspection+jwt', algorithms: ['ES256'] });
    expect(payload.token_introspection).toMatchObject({ active: true, username: 'erin' });
    // openid-client, told the algorithm, asks for a JWT answer and checks its signature.
    const processed = await oidc.tokenIntrospection(
      await oidc.discovery(suite.issuer, 'records-api', { introspection_signed_response_alg: 'ES256' }, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks] }),
      pat,
    );
    expect(processed).toEqual(payload.token_introspection);
  });
});
