import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, directPath, introspectAs, tokenRequest } from '../support/token-requests.ts';

// client_credentials tokens are issued by Tessera itself where oidc-provider would grant them
// (src/oauth/grants/client-credentials-grant.ts), and by oidc-provider otherwise. The token
// endpoint's observer says which answered; these tests hold the two to the same answers. With
// direct grants off (TESSERA_DIRECT_GRANTS=false) oidc-provider answers both: directPath.

const by = { actor: 'test' };
const OPAQUE_API = 'urn:tessera:api';
const JWT_API = 'https://records.example.org';

describe('client_credentials issued ahead of oidc-provider', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let rs: string;
  const secrets: Record<string, string> = {};

  const token = (form: Record<string, string> | URLSearchParams, headers: Record<string, string> = {}) => tokenRequest(tessera, form, headers);

  const introspect = (value: string) => introspectAs(tessera, { id: 'records-api', secret: rs }, value);

  /** What may differ between two tokens issued one after the other: their ids and times. */
  const timeless = ({ jti: _jti, iat: _iat, exp: _exp, nbf: _nbf, ...rest }: Record<string, unknown>) => rest;

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: `http://127.0.0.1:${port}`, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix },
      { oauth: { resources: { [OPAQUE_API]: { format: 'opaque' }, [JWT_API]: { format: 'jwt' } }, defaultResource: OPAQUE_API } },
      { logLevel: 'debug' },
    );
    rs = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    secrets.harvester = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read', 'deposit:write'] }, by)).secret!;
    secrets.signer = (await tessera.core.clients.create({ clientId: 'signer', name: 'Signer', kind: 'service', scopes: ['read'], defaultResource: JWT_API }, by)).secret!;
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('answers an opaque token exactly as oidc-provider does: headers, members, lifetime, what introspection says', async () => {
    const auth = { authorization: basic('harvester', secrets.harvester!) };
    const direct = await token({ grant_type: 'client_credentials', scope: 'read deposit:write' }, auth);
    // Naming the default resource is a parameter the direct path leaves to oidc-provider.
    const viaProvider = await token({ grant_type: 'client_credentials', scope: 'read deposit:write', resource: OPAQUE_API }, auth);
    expect(direct.answeredBy).toBe(directPath(tessera));
    expect(viaProvider.answeredBy).toBe('oidc-provider');

    expect(direct.status).toBe(200);
    expect(direct.headers).toEqual(viaProvider.headers);
    expect(Object.keys(direct.body)).toEqual(Object.keys(viaProvider.body));
    expect({ ...direct.body, access_token: 'x' }).toEqual({ ...viaProvider.body, access_token: 'x' });
    expect(direct.body).toMatchObject({ expires_in: 3600, scope: 'read deposit:write', token_type: 'Bearer' });
    expect(String(direct.body.access_token)).toHaveLength(String(viaProvider.body.access_token).length);

    const [a, b] = [await introspect(String(direct.body.access_token)), await introspect(String(viaProvider.body.access_token))];
    expect(a).toMatchObject({ active: true, client_id: 'harvester', scope: 'read deposit:write', aud: OPAQUE_API });
    expect(timeless(a)).toEqual(timeless(b));
  });

  it('signs an RFC 9068 JWT for a client whose default resource wants one, with the claims oidc-provider gives', async () => {
    const direct = await token({ grant_type: 'client_credentials', client_id: 'signer', client_secret: secrets.signer! });
    const viaProvider = await token({ grant_type: 'client_credentials', client_id: 'signer', client_secret: secrets.signer!, resource: JWT_API });
    expect([direct.answeredBy, viaProvider.answeredBy]).toEqual([directPath(tessera), 'oidc-provider']);
    expect(direct.headers).toEqual(viaProvider.headers);
    expect({ ...direct.body, access_token: 'x' }).toEqual({ ...viaProvider.body, access_token: 'x' });
    const [a, b] = [String(direct.body.access_token), String(viaProvider.body.access_token)];
    expect(decodeProtectedHeader(a)).toEqual(decodeProtectedHeader(b));
    expect(decodeJwt(a)).toMatchObject({ client_id: 'signer', aud: JWT_API, scope: 'read', iss: tessera.url.replace(/\/$/, '') });
    expect(timeless(decodeJwt(a))).toEqual(timeless(decodeJwt(b)));
    expect(timeless(await introspect(a))).toEqual(timeless(await introspect(b)));
  });

  it('serves openid-client with either secret method', async () => {
    const issuer = new URL(tessera.url);
    for (const auth of [oidc.ClientSecretBasic(secrets.harvester!), oidc.ClientSecretPost(secrets.harvester!)]) {
      const config = await oidc.discovery(issuer, 'harvester', undefined, auth, { execute: [oidc.allowInsecureRequests] });
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' });
      expect(tokens).toMatchObject({ token_type: 'bearer', scope: 'read', expires_in: 3600 });
      expect(await introspect(tokens.access_token)).toMatchObject({ active: true, client_id: 'harvester', scope: 'read' });
    }
  });

  it('leaves every request it would not grant to oidc-provider, which refuses it as before', async () => {
    const secret = secrets.harvester!;
    const cases: Array<[string, Record<string, string>, Record<string, string>, number, string]> = [
      ['a wrong secret', { grant_type: 'client_credentials' }, { authorization: basic('harvester', `${secret}x`) }, 401, 'invalid_client'],
      ['an unknown client', { grant_type: 'client_credentials' }, { authorization: basic('nobody', secret) }, 401, 'invalid_client'],
      ['a secret sent two ways', { grant_type: 'client_credentials', client_secret: secret }, { authorization: basic('harvester', secret) }, 400, 'invalid_request'],
      ['a client_id that is not the Basic one', { grant_type: 'client_credentials', client_id: 'signer' }, { authorization: basic('harvester', secret) }, 400, 'invalid_request'],
      ['a client without the grant (RFC 6749 §5.2)', { grant_type: 'client_credentials' }, { authorization: basic('records-api', rs) }, 400, 'unauthorized_client'],
      ['a resource nobody defined', { grant_type: 'client_credentials', resource: 'https://elsewhere.example.org' }, { authorization: basic('harvester', secret) }, 400, 'invalid_target'],
      ['a browser origin', { grant_type: 'client_credentials' }, { authorization: basic('harvester', secret), origin: 'https://app.example.org' }, 400, 'invalid_request'],
    ];
    for (const [what, form, headers, status, error] of cases) {
      const answer = await token(form, headers);
      expect({ what, status: answer.status, error: answer.body.error, answeredBy: answer.answeredBy }).toEqual({ what, status, error, answeredBy: 'oidc-provider' });
    }
    const repeated = new URLSearchParams([['grant_type', 'client_credentials'], ['scope', 'read'], ['scope', 'read']]);
    const answer = await token(repeated, { authorization: basic('harvester', secret) });
    expect([answer.status, answer.body.error, answer.answeredBy]).toEqual([400, 'invalid_request', 'oidc-provider']);
    // A request with a DPoP header is oidc-provider's, which binds tokens to the proof's key (dpop.test.ts).
    const dpop = await token({ grant_type: 'client_credentials' }, { authorization: basic('harvester', secret), dpop: 'not-a-jwt' });
    expect([dpop.status, dpop.body.error, dpop.answeredBy]).toEqual([400, 'invalid_dpop_proof', 'oidc-provider']);
  });

  it('stops issuing to a client the moment it is deleted, and its tokens end with it', async () => {
    const { secret } = await tessera.core.clients.create({ clientId: 'short-lived', name: 'Short-lived', kind: 'service', scopes: ['read'] }, by);
    const issued = await token({ grant_type: 'client_credentials' }, { authorization: basic('short-lived', secret!) });
    expect(issued.answeredBy).toBe(directPath(tessera));
    expect(await introspect(String(issued.body.access_token))).toMatchObject({ active: true });
    await tessera.core.clients.delete('short-lived', by);
    const refused = await token({ grant_type: 'client_credentials' }, { authorization: basic('short-lived', secret!) });
    expect([refused.status, refused.body.error, refused.answeredBy]).toEqual([401, 'invalid_client', 'oidc-provider']);
    expect(await introspect(String(issued.body.access_token))).toEqual({ active: false });
  });

  it('never writes a client secret or a token into the log', () => {
    for (const secret of Object.values(secrets)) expect(tessera.logs.text).not.toContain(secret);
    expect(tessera.logs.text).not.toMatch(/"access_token"/);
  });
});
