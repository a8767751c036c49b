import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from 'jose';
import type { Config } from '../../../src/config/schema.ts';
import { invalidationTarget } from '../../../src/cache/invalidations.ts';
import { createCredentialVerifier } from '../../../src/introspection/credential-verifier.ts';
import type { CredentialLink } from '../../../src/oauth/adapter/exchanged-tokens.ts';

const ISSUER = 'https://auth.example.org';

/** The credential verifier on JWT access tokens, with its stores as plain functions (the verifier is what is tested). */
async function setUp() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const revoked = new Set<string>();
  const exchanged = new Map<string, CredentialLink[]>();
  const verifier = createCredentialVerifier({
    config: { issuer: ISSUER } as Config,
    accounts: { peekUser: (id) => (id === 'u1' ? ({ id: 'u1', username: 'alice', disabled: false, allowedScopes: ['read'] } as never) : null) },
    clients: { findOidcMetadata: (clientId) => (clientId === 'harvester' ? { client_id: 'harvester' } : undefined) as never },
    sessions: {} as never,
    personalTokens: {} as never,
    oidcModel: () => ({ find: async () => undefined }) as never,
    findOidcToken: async () => undefined,
    verificationKey: createLocalJWKSet({ keys: [jwk] } as JSONWebKeySet),
    jwtRevoked: async (jti) => revoked.has(jti),
    exchangedTokenLinks: async (jti) => exchanged.get(jti) ?? null,
    findOidcTokenByDigest: async () => undefined,
  });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ client_id: 'harvester', scope: 'read', ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setIssuer(ISSUER)
      .setSubject(String(claims.sub ?? 'harvester'))
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(privateKey);
  return { verifier, sign, revoked, exchanged };
}

describe('the credential verifier on JWT access tokens', () => {
  it('answers a client-credentials JWT, ended by its revocation record and by its invalidation target', async () => {
    const { verifier, sign, revoked } = await setUp();
    const token = await sign({ jti: 'jti-1' });
    const active = await verifier.verify(token);
    expect(active).toMatchObject({ kind: 'access_token', sub: 'harvester', clientId: 'harvester', scopes: ['read'] });
    // What a revocation publishes reaches the cached answer.
    expect(active!.invalidatedBy).toContain(invalidationTarget.jwtAccessToken('jti-1'));
    revoked.add('jti-1');
    expect(await verifier.verify(token)).toBeNull();
  });

  it('never answers a sender-constrained (cnf) JWT as a bearer token', async () => {
    const { verifier, sign } = await setUp();
    expect(await verifier.verify(await sign({ jti: 'jti-2', cnf: { jkt: 'kEEvs2UUMH2iY1KGBqdQ3dxmxX1v3UVdcY0ULKVqE7w' } }))).toBeNull();
  });

  it('answers an exchanged JWT (act) only while its record is there and every link holds, and never one with an actor it did not write', async () => {
    const { verifier, sign, revoked, exchanged } = await setUp();
    const act = { sub: 'harvester', client_id: 'harvester' };
    const token = await sign({ jti: 'x-1', sub: 'u1', act });
    expect(await verifier.verify(token)).toBeNull(); // no record
    exchanged.set('x-1', [{ type: 'jwt', jti: 'subject-jti' }, { type: 'client', id: 'harvester' }]);
    const active = await verifier.verify(token);
    expect(active).toMatchObject({ sub: 'u1', username: 'alice', act, scopes: ['read'] });
    expect(active!.invalidatedBy).toEqual(expect.arrayContaining([invalidationTarget.jwtAccessToken('x-1'), invalidationTarget.jwtAccessToken('subject-jti'), invalidationTarget.user('u1')]));
    revoked.add('subject-jti');
    expect(await verifier.verify(token)).toBeNull();
    exchanged.set('x-2', [{ type: 'client', id: 'deleted-client' }]);
    expect(await verifier.verify(await sign({ jti: 'x-2', sub: 'u1', act }))).toBeNull();
    exchanged.set('x-3', []);
    expect(await verifier.verify(await sign({ jti: 'x-3', sub: 'u1', act: { client_id: 'harvester' } }))).toBeNull();
    expect(await verifier.verify(await sign({ sub: 'u1', act }))).toBeNull();
    expect(await verifier.verify(await sign({ jti: 'x-3', sub: 'u1', act, tessera_grant: 'g1' }))).toBeNull();
    expect(await verifier.verify(await sign({ jti: 'x-3', sub: 'u1', act }))).toMatchObject({ act });
  });
});
