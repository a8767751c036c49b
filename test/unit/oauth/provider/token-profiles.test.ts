import { describe, expect, it } from '@jest/globals';
import { shapeForProfile } from '../../../../src/oauth/provider/token-profiles.ts';

// The claims of a JWT access token per profile (the tokens themselves are checked by scitokens-cpp
// in test/integration/token-profiles.test.ts).

const BUILT = {
  jti: 'j1', sub: 'u1', iat: 100, exp: 200, scope: 'storage.read:/a wlcg.groups:/atlas wlcg.groups wlcg.groups:/cms', client_id: 'c1',
  iss: 'https://auth.example.org', aud: 'https://se.example.org', tessera_grant: 'g1', authorization_details: undefined, extra_claim: 'x',
};

describe('shapeForProfile', () => {
  it('leaves RFC 9068 tokens as oidc-provider built them', () => {
    expect(shapeForProfile('rfc9068', BUILT)).toBe(BUILT);
  });

  it('makes a WLCG 1.0 token: wlcg.ver, nbf, groups out of scope into wlcg.groups, unknown claims dropped', () => {
    expect(shapeForProfile('wlcg', BUILT)).toEqual({
      'wlcg.ver': '1.0', iss: 'https://auth.example.org', sub: 'u1', aud: 'https://se.example.org', iat: 100, nbf: 100, exp: 200, jti: 'j1',
      scope: 'storage.read:/a', 'wlcg.groups': ['/atlas', '/cms'], client_id: 'c1', tessera_grant: 'g1',
    });
    expect(shapeForProfile('wlcg', { ...BUILT, scope: 'wlcg.groups:/atlas' })).not.toHaveProperty('scope');
  });

  it('makes a SciTokens 2.0 token', () => {
    expect(shapeForProfile('scitokens', { ...BUILT, scope: 'read:/a write:/b' })).toEqual({
      ver: 'scitoken:2.0', iss: 'https://auth.example.org', sub: 'u1', aud: 'https://se.example.org', iat: 100, nbf: 100, exp: 200, jti: 'j1',
      scope: 'read:/a write:/b', client_id: 'c1', tessera_grant: 'g1',
    });
  });

  it('never drops a sender constraint or a delegation\'s actor', () => {
    const bound = { ...BUILT, cnf: { jkt: 'thumbprint' }, act: { sub: 'job-runner' } };
    for (const profile of ['wlcg', 'scitokens'] as const) {
      expect(shapeForProfile(profile, bound)).toMatchObject({ cnf: { jkt: 'thumbprint' }, act: { sub: 'job-runner' } });
    }
  });
});
