import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTesseraVerifier, type TesseraVerifierOptions } from '@tessera/verifier';
import { ClientCredentialsAuth } from '@tessera/client';
import { calculateJwkThumbprint, exportJWK, SignJWT, type CryptoKey } from 'jose';

type CryptoKeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };
import * as oidc from 'openid-client';
import { accessTokenHash } from '../../src/introspection/dpop-proof.ts';
import { approveDevice } from '../support/device-approval.ts';
import type { TestTessera } from '../support/start-tessera.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';
import type { ServerProcess } from '../support/server-process.ts';
import { startTwoNodes, type TwoNodes } from '../support/two-nodes.ts';

const JWT_API = 'https://records.example.org';
const by = { actor: 'test' };
const insecure = { execute: [oidc.allowInsecureRequests] };

/** A proof made by hand, to send what openid-client never would (an old iat, a replay, another URL). */
async function handProof(keys: CryptoKeyPair, claims: { htm: string; htu: string; ath?: string; iat?: number; jti?: string }): Promise<string> {
  const jwk = await exportJWK(keys.publicKey);
  return new SignJWT({ htm: claims.htm, htu: claims.htu, jti: claims.jti ?? randomUUID(), ...(claims.ath ? { ath: claims.ath } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000))
    .sign(keys.privateKey);
}

const thumbprintOf = async (keys: CryptoKeyPair) => calculateJwkThumbprint(await exportJWK(keys.publicKey));

// Sender-constrained tokens (RFC 9449) end to end with openid-client's DPoP support: the token
// endpoint binds every grant's tokens to the proof's key (a public client's refresh token too),
// introspection names the key, and Tessera's own resource paths (/api/v1/me, userinfo,
// /auth/verify) take a bound token only with a proof of that key for that request.
describe('DPoP (sender-constrained tokens)', () => {
  const suite = tesseraForSuite(
    { TESSERA_DEVICE_POLL_INTERVAL: '1' },
    { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' } } } },
    { issuerOnItsPort: true },
  );
  let tessera: TestTessera;
  let issuer: URL;
  let serviceSecret: string;
  let rsSecret: string;

  beforeAll(async () => {
    ({ tessera, issuer } = suite);
    await tessera.core.accounts.createUser({ username: 'fran', password: 'fran-password-1', scopes: ['read'] }, by);
    serviceSecret = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    rsSecret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['openid', 'read', 'offline_access'] }, by);
  });

  async function introspect(token: string): Promise<Record<string, unknown>> {
    const answer = await fetch(`${issuer.origin}/oauth/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`records-api:${rsSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token }),
    });
    return (await answer.json()) as Record<string, unknown>;
  }

  /** A device login of fran through the public client `cli`, its token requests with `DPoP`. */
  async function deviceLogin(config: oidc.Configuration, resource: string, DPoP: oidc.DPoPHandle) {
    const start = await oidc.initiateDeviceAuthorization(config, { scope: 'openid read offline_access', resource });
    await approveDevice(issuer.origin, start.user_code, 'fran', 'fran-password-1');
    return oidc.pollDeviceAuthorizationGrant(config, start, undefined, { DPoP });
  }

  it('advertises the proof algorithms in its discovery document', async () => {
    const discovery = (await (await fetch(`${issuer.origin}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'EdDSA']));
  });

  it('binds client-credentials tokens, opaque and JWT, which introspection answers with cnf.jkt', async () => {
    const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, keys);
    for (const resource of ['urn:tessera:api', JWT_API]) {
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource }, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      expect(await introspect(tokens.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: await thumbprintOf(keys) }, client_id: 'harvester' });
      // Without a proof: a bearer token, as ever, and introspection says so.
      const bearer = await oidc.clientCredentialsGrant(config, { scope: 'read', resource });
      expect(bearer.token_type.toLowerCase()).toBe('bearer');
      const answer = await introspect(bearer.access_token);
      expect(answer).toMatchObject({ active: true, token_type: 'Bearer' });
      expect(answer.cnf).toBeUndefined();
    }
  });

  it('binds a device login and its refresh tokens to the key, and keeps the binding across refreshes', async () => {
    const config = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), insecure);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const jkt = await thumbprintOf(keys);
    for (const resource of ['urn:tessera:api', JWT_API]) {
      const tokens = await deviceLogin(config, resource, oidc.getDPoPHandle(config, keys));
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      expect(await introspect(tokens.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
      // A public client's refresh token is bound too (RFC 9449 §5).
      expect(await introspect(tokens.refresh_token!)).toMatchObject({ active: true, credential_kind: 'refresh_token', cnf: { jkt } });

      // Refreshing without a proof, or with another key, fails and spends nothing.
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      const other = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: other })).rejects.toMatchObject({ error: 'invalid_grant' });

      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(config, keys) });
      expect(refreshed.token_type.toLowerCase()).toBe('dpop');
      expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
      expect(await introspect(refreshed.refresh_token!)).toMatchObject({ active: true, cnf: { jkt } });
    }
  }, 60_000);

  it('answers a refresh retried with the same key within the reuse grace with the same tokens, and no other key or replayed proof', async () => {
    const config = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), insecure);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const tokens = await deviceLogin(config, 'urn:tessera:api', oidc.getDPoPHandle(config, keys));
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(config, keys) });
    // Its answer lost on the way: the CLI sends the old refresh token again, with a new proof of its key.
    const retried = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(config, keys) });
    expect([retried.access_token, retried.refresh_token, retried.token_type.toLowerCase()]).toEqual([refreshed.access_token, refreshed.refresh_token, 'dpop']);

    // Another key, or no proof, is no retry: refused, and the login stands.
    const other = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: other })).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // A proof is good once, on the retry path too.
    const tokenEndpoint = config.serverMetadata().token_endpoint!;
    const proof = await handProof(keys, { htm: 'POST', htu: tokenEndpoint });
    const send = () => fetch(tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: 'cli' }) });
    const first = await send();
    expect([first.status, ((await first.json()) as { access_token?: string }).access_token]).toEqual([200, refreshed.access_token]);
    const replayed = await send();
    expect([replayed.status, ((await replayed.json()) as { error?: string }).error]).toEqual([400, 'invalid_grant']);
    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, token_type: 'DPoP' });
    expect(await introspect(refreshed.refresh_token!)).toMatchObject({ active: true });
  }, 60_000);

  it('answers /api/v1/me and userinfo to a bound token with its proof, and refuses it as a bearer token', async () => {
    const config = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), insecure);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, keys);
    const tokens = await deviceLogin(config, 'urn:tessera:api', DPoP);

    const me = await oidc.fetchProtectedResource(config, tokens.access_token, new URL('/api/v1/me', issuer), 'GET', undefined, undefined, { DPoP });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ username: 'fran', credential: 'access_token', client_id: 'cli' });
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck, { DPoP });
    expect(userinfo.preferred_username).toBe('fran');

    for (const path of ['/api/v1/me', '/oauth/userinfo', '/auth/verify']) {
      const asBearer = await fetch(new URL(path, issuer), { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect([path, asBearer.status]).toEqual([path, 401]);
      expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_token"/);
    }
    // The DPoP scheme without a proof.
    const noProof = await fetch(new URL('/api/v1/me', issuer), { headers: { authorization: `DPoP ${tokens.access_token}` } });
    expect(noProof.status).toBe(401);
    expect(noProof.headers.get('www-authenticate')).toMatch(/error="invalid_dpop_proof"/);
  }, 30_000);

  it('refuses proofs for another method, another URL, another token, another key, an old iat, and a replayed jti', async () => {
    const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: 'urn:tessera:api' }, { DPoP: oidc.getDPoPHandle(config, keys) });
    const other = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: 'urn:tessera:api' }, { DPoP: oidc.getDPoPHandle(config, keys) });
    const me = new URL('/api/v1/me', issuer).href;
    const ath = accessTokenHash(tokens.access_token);
    const send = (proof: string) => fetch(me, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: proof } });
    const refusal = async (proof: string) => {
      const answer = await send(proof);
      return [answer.status, /error="invalid_dpop_proof"/.test(answer.headers.get('www-authenticate') ?? '')];
    };

    expect(await refusal(await handProof(keys, { htm: 'POST', htu: me, ath }))).toEqual([401, true]);
    expect(await refusal(await handProof(keys, { htm: 'GET', htu: new URL('/api/v1/tokens', issuer).href, ath }))).toEqual([401, true]);
    expect(await refusal(await handProof(keys, { htm: 'GET', htu: me, ath: accessTokenHash(other.access_token) }))).toEqual([401, true]);
    expect(await refusal(await handProof(keys, { htm: 'GET', htu: me }))).toEqual([401, true]);
    expect(await refusal(await handProof(await oidc.randomDPoPKeyPair('ES256'), { htm: 'GET', htu: me, ath }))).toEqual([401, true]);
    expect(await refusal(await handProof(keys, { htm: 'GET', htu: me, ath, iat: Math.floor(Date.now() / 1000) - 600 }))).toEqual([401, true]);

    // htu is compared normalised (RFC 9449 §4.3): case of scheme and host, default port, query ignored.
    const upper = `${me.replace('http://127.0.0.1', 'HTTP://127.0.0.1')}?x=1`;
    const good = await handProof(keys, { htm: 'GET', htu: upper, ath });
    expect((await send(good)).status).toBe(200);
    // The same proof again: a replay.
    expect(await refusal(good)).toEqual([401, true]);
  }, 30_000);

  it('refuses a replayed proof exactly once of many concurrent uses', async () => {
    const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: 'urn:tessera:api' }, { DPoP: oidc.getDPoPHandle(config, keys) });
    const me = new URL('/api/v1/me', issuer).href;
    const proof = await handProof(keys, { htm: 'GET', htu: me, ath: accessTokenHash(tokens.access_token) });
    const statuses = await Promise.all(Array.from({ length: 12 }, () => fetch(me, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: proof } }).then((r) => r.status)));
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 401)).toHaveLength(11);
  });

  it('checks a bound token at /auth/verify against the forwarded method and URL', async () => {
    const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: 'urn:tessera:api' }, { DPoP: oidc.getDPoPHandle(config, keys) });
    const original = 'https://repository.example.org/records/42?page=2';
    const forwarded = { 'x-original-method': 'PUT', 'x-original-uri': '/records/42?page=2', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'repository.example.org' };
    const verify = async (proof: string, headers: Record<string, string> = forwarded) =>
      (await fetch(new URL('/auth/verify?scope=read', issuer), { headers: { ...headers, authorization: `DPoP ${tokens.access_token}`, dpop: proof } })).status;
    const ath = accessTokenHash(tokens.access_token);
    expect(await verify(await handProof(keys, { htm: 'PUT', htu: original, ath }))).toBe(200);
    expect(await verify(await handProof(keys, { htm: 'GET', htu: original, ath }))).toBe(401);
    expect(await verify(await handProof(keys, { htm: 'PUT', htu: 'https://repository.example.org/records/43', ath }))).toBe(401);
    // Without the forwarded request, no proof can be checked.
    expect(await verify(await handProof(keys, { htm: 'PUT', htu: original, ath }), {})).toBe(401);
    // Traefik's ForwardAuth names the request with X-Forwarded-Method and X-Forwarded-Uri.
    const traefik = { 'x-forwarded-method': 'PUT', 'x-forwarded-uri': '/records/42?page=2', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'repository.example.org' };
    expect(await verify(await handProof(keys, { htm: 'PUT', htu: original, ath }), traefik)).toBe(200);
  });

  describe('@tessera/verifier in an express API', () => {
    const servers: Server[] = [];
    afterAll(async () => {
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    });

    /** An API with `GET /records` and `PUT /records/:id`, each needing `read`. */
    async function startApi(options: Partial<TesseraVerifierOptions> = {}) {
      const verifier = createTesseraVerifier({ issuer: issuer.origin, clientId: 'records-api', clientSecret: rsSecret, audience: ['urn:tessera:api', JWT_API], ...options });
      const app = express();
      app.get('/records', verifier.requireScopes('read'), (req, res) => res.json(req.tessera));
      app.put('/records/:id', verifier.requireScopes('read'), (req, res) => res.json(req.tessera));
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }

    it('accepts a bound token with its proof (opaque, introspected; JWT, verified locally) and refuses every bad proof', async () => {
      const api = await startApi();
      const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
      const keys = await oidc.randomDPoPKeyPair('ES256');
      const DPoP = oidc.getDPoPHandle(config, keys);
      for (const resource of ['urn:tessera:api', JWT_API]) {
        const { access_token: token } = await oidc.clientCredentialsGrant(config, { scope: 'read', resource }, { DPoP });
        const good = await oidc.fetchProtectedResource(config, token, new URL(`${api}/records`), 'GET', undefined, undefined, { DPoP });
        expect(good.status).toBe(200);
        expect(await good.json()).toMatchObject({ sub: 'harvester', jkt: await thumbprintOf(keys), verifiedBy: resource === JWT_API ? 'jwt' : 'introspection' });

        const records = `${api}/records`;
        const ath = accessTokenHash(token);
        const send = async (proof: string, init: { method?: string; url?: string; scheme?: string } = {}) => {
          const answer = await fetch(init.url ?? records, { method: init.method ?? 'GET', headers: { authorization: `${init.scheme ?? 'DPoP'} ${token}`, dpop: proof } });
          return [answer.status, answer.headers.get('www-authenticate')?.match(/error="([a-z_]+)"/)?.[1]];
        };
        const refused = [401, 'invalid_dpop_proof'];
        expect(await send(await handProof(keys, { htm: 'PUT', htu: records, ath }))).toEqual(refused);
        expect(await send(await handProof(keys, { htm: 'PUT', htu: `${api}/records/2`, ath }), { method: 'PUT', url: `${api}/records/1` })).toEqual(refused);
        expect(await send(await handProof(keys, { htm: 'GET', htu: records, ath, iat: Math.floor(Date.now() / 1000) - 300 }))).toEqual(refused);
        expect(await send(await handProof(keys, { htm: 'GET', htu: records, ath: accessTokenHash('another-token') }))).toEqual(refused);
        expect(await send(await handProof(await oidc.randomDPoPKeyPair('ES256'), { htm: 'GET', htu: records, ath }))).toEqual(refused);
        // As a bearer token: the DPoP challenge, invalid_token.
        const asBearer = await fetch(records, { headers: { authorization: `Bearer ${token}` } });
        expect(asBearer.status).toBe(401);
        expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP algs="[^"]+", error="invalid_token"/);
        // A good proof once, then replayed.
        const once = await handProof(keys, { htm: 'PUT', htu: `${api}/records/1`, ath });
        expect(await send(once, { method: 'PUT', url: `${api}/records/1` })).toEqual([200, undefined]);
        expect(await send(once, { method: 'PUT', url: `${api}/records/1` })).toEqual(refused);
      }
    });

    it('asks for its own nonce when configured to (use_dpop_nonce with DPoP-Nonce), which openid-client sends on its retry', async () => {
      const api = await startApi({ dpop: { nonces: true } });
      const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
      const { access_token: token } = await oidc.clientCredentialsGrant(config, { scope: 'read' }, { DPoP });
      const statuses: number[] = [];
      config[oidc.customFetch] = async (url, options) => {
        const answer = await fetch(url, options as RequestInit);
        if (url.startsWith(api)) statuses.push(answer.status);
        return answer;
      };
      const answer = await oidc.fetchProtectedResource(config, token, new URL(`${api}/records`), 'GET', undefined, undefined, { DPoP });
      expect(answer.status).toBe(200);
      expect(statuses).toEqual([401, 200]);
    });
  });

  it('keeps unbound tokens on the bearer path: the DPoP scheme is refused for them', async () => {
    const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
    const bearer = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: 'urn:tessera:api' });
    expect((await fetch(new URL('/api/v1/me', issuer), { headers: { authorization: `Bearer ${bearer.access_token}` } })).status).toBe(200);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const me = new URL('/api/v1/me', issuer).href;
    const proof = await handProof(keys, { htm: 'GET', htu: me, ath: accessTokenHash(bearer.access_token) });
    expect((await fetch(me, { headers: { authorization: `DPoP ${bearer.access_token}`, dpop: proof } })).status).toBe(401);
  });
});

describe('DPoP with nonces required', () => {
  const suite = tesseraForSuite({ TESSERA_DPOP_REQUIRE_NONCE: 'true', TESSERA_DPOP_RESOURCE_NONCES: 'true' }, {}, { issuerOnItsPort: true });

  it('asks for a nonce (use_dpop_nonce with DPoP-Nonce) at the token endpoint and at its resource paths, and accepts the retry that carries it', async () => {
    const { tessera, issuer } = suite;
    const secret = (await tessera.core.clients.create({ clientId: 'nonce-service', name: 'Nonce service', kind: 'service', scopes: ['read'] }, by)).secret!;
    const config = await oidc.discovery(issuer, 'nonce-service', secret, undefined, insecure);
    const seen: { status: number; nonce: string | null; error?: string }[] = [];
    config[oidc.customFetch] = async (url, options) => {
      const answer = await fetch(url, options as RequestInit);
      if (new URL(url).pathname === '/oauth/token') {
        const body = (await answer.clone().json()) as { error?: string };
        seen.push({ status: answer.status, nonce: answer.headers.get('dpop-nonce'), ...(body.error ? { error: body.error } : {}) });
      }
      return answer;
    };
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' }, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    expect(seen).toEqual([
      { status: 400, nonce: expect.any(String), error: 'use_dpop_nonce' },
      // (The nonce it sent is still current: no new one.)
      { status: 200, nonce: null },
    ]);
    // The handle keeps the nonce: the next request needs no second try.
    await oidc.clientCredentialsGrant(config, { scope: 'read' }, { DPoP });
    expect(seen).toHaveLength(3);
    expect(seen[2]!.status).toBe(200);

    // Tessera's resource paths ask for a nonce of their own (RFC 9449 §9), which openid-client sends on its retry.
    const me: number[] = [];
    config[oidc.customFetch] = async (url, options) => {
      const answer = await fetch(url, options as RequestInit);
      if (new URL(url).pathname === '/api/v1/me') me.push(answer.status);
      return answer;
    };
    const answer = await oidc.fetchProtectedResource(config, tokens.access_token, new URL('/api/v1/me', issuer), 'GET', undefined, undefined, { DPoP });
    expect([answer.status, me]).toEqual([200, [401, 200]]);

    // At forward-auth: a proof without a nonce is answered use_dpop_nonce with DPoP-Nonce; with it, it passes.
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const bound = await oidc.clientCredentialsGrant(config, { scope: 'read' }, { DPoP: oidc.getDPoPHandle(config, keys) });
    const original = 'https://repository.example.org/records/42';
    const forwarded = { 'x-original-method': 'GET', 'x-original-uri': '/records/42', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'repository.example.org' };
    const verify = async (nonce?: string) => {
      const jwk = await exportJWK(keys.publicKey);
      const proof = await new SignJWT({ htm: 'GET', htu: original, jti: randomUUID(), ath: accessTokenHash(bound.access_token), ...(nonce ? { nonce } : {}) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(keys.privateKey);
      return fetch(new URL('/auth/verify', issuer), { headers: { ...forwarded, authorization: `DPoP ${bound.access_token}`, dpop: proof } });
    };
    const asked = await verify();
    expect(asked.status).toBe(401);
    expect(asked.headers.get('www-authenticate')).toMatch(/error="use_dpop_nonce"/);
    const nonce = asked.headers.get('dpop-nonce');
    expect(nonce).toEqual(expect.any(String));
    expect((await verify(nonce!)).status).toBe(200);
    expect((await verify('made-up')).status).toBe(401);
  });
});

describe('@tessera/client with nonces required at the token endpoint and at the resource', () => {
  const suite = tesseraForSuite({ TESSERA_DPOP_REQUIRE_NONCE: 'true', TESSERA_DPOP_RESOURCE_NONCES: 'true' }, {}, { issuerOnItsPort: true });

  it('answers use_dpop_nonce at both by sending the request again with the nonce', async () => {
    const { tessera, issuer } = suite;
    const secret = (await tessera.core.clients.create({ clientId: 'nonce-client', name: 'Nonce client', kind: 'service', scopes: ['read'] }, by)).secret!;
    const seen: string[] = [];
    const counting: typeof fetch = async (input, init) => {
      const answer = await fetch(input, init);
      const request = new Request(input, init);
      seen.push(`${request.method} ${new URL(request.url).pathname} ${answer.status}`);
      return answer;
    };
    const auth = new ClientCredentialsAuth({ issuer: issuer.origin, clientId: 'nonce-client', clientSecret: secret, dpop: true, fetch: counting });
    const answer = await auth.fetch(`${issuer.origin}/api/v1/me`);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ client_id: 'nonce-client' });
    expect(seen.filter((line) => !line.includes('openid-configuration'))).toEqual(['POST /oauth/token 400', 'POST /oauth/token 200', 'GET /api/v1/me 401', 'GET /api/v1/me 200']);
  });
});

// Two Tessera processes on one database and one Redis prefix, as two nodes behind a load balancer:
// a proof spent at one is spent at both, and a nonce one gave is good at the other.
describe('DPoP across two Tessera nodes', () => {
  let nodes: TwoNodes;
  let a: TestTessera;
  let b: ServerProcess;
  let secret: string;

  beforeAll(async () => {
    nodes = await startTwoNodes({ settings: { TESSERA_DPOP_REQUIRE_NONCE: 'true' } });
    ({ a, b } = nodes);
    secret = (await a.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
  }, 60_000);
  afterAll(async () => {
    await nodes?.stop();
  });

  /** A client-credentials request to `node` with a proof (and `nonce`, if given). */
  async function tokenRequest(node: string, keys: CryptoKeyPair, nonce?: string) {
    const endpoint = `${node}/oauth/token`;
    const jwk = await exportJWK(keys.publicKey);
    const proof = await new SignJWT({ htm: 'POST', htu: endpoint, jti: randomUUID(), ...(nonce ? { nonce } : {}) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .setIssuedAt()
      .sign(keys.privateKey);
    const answer = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`harvester:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
    });
    return { status: answer.status, nonce: answer.headers.get('dpop-nonce'), body: (await answer.json()) as { error?: string; access_token?: string; token_type?: string } };
  }

  it('accepts at one node the nonce the other gave, and refuses at one node a proof spent at the other', async () => {
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const asked = await tokenRequest(a.url, keys);
    expect([asked.status, asked.body.error]).toEqual([400, 'use_dpop_nonce']);
    const issued = await tokenRequest(b.url, keys, asked.nonce!);
    expect([issued.status, issued.body.token_type]).toEqual([200, 'DPoP']);
    const token = issued.body.access_token!;

    // Forward-auth on both nodes, for one request a gateway forwards: the proof is good once.
    const original = 'https://repository.example.org/records/42';
    const forwarded = { 'x-original-method': 'GET', 'x-original-uri': '/records/42', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'repository.example.org' };
    const proof = await handProof(keys, { htm: 'GET', htu: original, ath: accessTokenHash(token) });
    const verify = (node: string) => fetch(`${node}/auth/verify`, { headers: { ...forwarded, authorization: `DPoP ${token}`, dpop: proof } }).then((answer) => answer.status);
    expect(await verify(a.url)).toBe(200);
    expect(await verify(b.url)).toBe(401);
    const another = await handProof(keys, { htm: 'GET', htu: original, ath: accessTokenHash(token) });
    const both = await Promise.all([a.url, b.url].map((node) => fetch(`${node}/auth/verify`, { headers: { ...forwarded, authorization: `DPoP ${token}`, dpop: another } }).then((answer) => answer.status)));
    expect(both.sort()).toEqual([200, 401]);
  });
});
