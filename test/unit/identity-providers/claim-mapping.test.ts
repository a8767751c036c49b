import { describe, expect, it } from '@jest/globals';
import { identityProvidersSchema, PRESET_DEFAULTS, redirectUriOf, type IdentityProvider } from '../../../src/config/identity-providers.ts';
import { scopesFromClaims, usernameCandidates, usernameFrom, verifiedEmail } from '../../../src/identity-providers/claim-mapping.ts';
import { usernameSchema } from '../../../src/accounts/user.ts';

const provider = (input: Record<string, unknown>): IdentityProvider => identityProvidersSchema.parse([{ id: 'uni', name: 'University', clientId: 'tessera', clientSecret: 's', ...input }])[0]!;
const CATALOG = { read: 'Read', 'deposit:actions': 'Deposit actions', 'deposit:write': 'Write' };

describe('what Tessera takes from a provider\'s claims', () => {
  it('makes usernames of the username format from claims, an e-mail giving its local part', () => {
    expect(usernameFrom('ada.lovelace')).toBe('ada.lovelace');
    expect(usernameFrom('Ada.Lovelace@uni.example.org')).toBe('Ada.Lovelace');
    expect(usernameFrom('José Müller')).toBe('Jose-Muller');
    expect(usernameFrom('--__x')).toBe('x');
    expect(usernameFrom('😀')).toBeNull();
    expect(usernameFrom('a'.repeat(100))).toHaveLength(64);
    for (const value of ['ada', 'Ada.Lovelace@uni.example.org', 'José Müller', '0000-0002-1825-0097', 'jdoe@uni.edu', 'x'.repeat(300)]) {
      expect(usernameSchema.safeParse(usernameFrom(value)).success).toBe(true);
    }
  });

  it('tries the configured claims in order, and falls back on the provider and subject', () => {
    const uni = provider({ issuer: 'https://idp.uni.example.org' });
    expect(usernameCandidates(uni, { preferred_username: 'ada', email: 'ada.l@uni.example.org' }, 'sub-1')).toEqual(['ada', 'ada.l']);
    expect(usernameCandidates(uni, {}, 'f47ac10b-58cc-4372-a567-0e02b2c3d479')).toEqual(['uni-f47ac10b-58cc-43']);
    // GitHub's numeric id counts as a claim value.
    expect(usernameCandidates(provider({ preset: 'github' }), { login: 'octocat', id: 1 }, '1')).toEqual(['octocat']);
  });

  it('keeps an e-mail only when the provider says it verified it', () => {
    const uni = provider({ issuer: 'https://idp.uni.example.org' });
    expect(verifiedEmail(uni, { email: 'ada@uni.example.org', email_verified: true })).toBe('ada@uni.example.org');
    expect(verifiedEmail(uni, { email: 'ada@uni.example.org' })).toBeNull();
    expect(verifiedEmail(uni, { email: 'ada@uni.example.org', email_verified: 'true' })).toBeNull();
  });

  it('grants the scopes of the rules whose claim holds the value, only from the catalog', () => {
    const uni = provider({
      issuer: 'https://idp.uni.example.org',
      scopeRules: [
        { claim: 'eduperson_entitlement', value: 'urn:mace:egi.eu:group:deposit', scopes: ['deposit:actions'] },
        { claim: 'groups', value: 'archivists', scopes: ['deposit:write', 'deposit:actions'] },
      ],
    });
    expect(scopesFromClaims(uni, { eduperson_entitlement: ['urn:x', 'urn:mace:egi.eu:group:deposit'] }, CATALOG)).toEqual(['deposit:actions']);
    expect(scopesFromClaims(uni, { groups: 'archivists' }, CATALOG)).toEqual(['deposit:write', 'deposit:actions']);
    expect(scopesFromClaims(uni, { groups: ['other'], eduperson_entitlement: 'urn:mace:egi.eu:group:deposit:sub' }, CATALOG)).toEqual([]);
    expect(scopesFromClaims(uni, { groups: 'archivists' }, { read: 'Read', 'deposit:actions': 'x' })).toEqual(['deposit:actions']);
  });
});

describe('the presets', () => {
  it('fill in what each service needs, and an operator\'s member wins', () => {
    const orcid = provider({ preset: 'orcid' });
    expect([orcid.protocol, orcid.issuer, orcid.scopes, orcid.claims.username]).toEqual(['oidc', 'https://orcid.org', ['openid'], ['sub']]);
    const cilogon = provider({ preset: 'cilogon' });
    expect([cilogon.issuer, cilogon.scopes, cilogon.claims.username]).toEqual(['https://cilogon.org', ['openid', 'email', 'profile', 'org.cilogon.userinfo'], ['eppn', 'email']]);
    const egi = provider({ preset: 'keycloak', issuer: 'https://aai.egi.eu/auth/realms/egi' });
    expect([egi.issuer, egi.scopes, egi.claims.username]).toEqual(['https://aai.egi.eu/auth/realms/egi', ['openid', 'email', 'profile'], ['preferred_username', 'email']]);
    const github = provider({ preset: 'github' });
    expect(github.protocol).toBe('oauth2');
    expect(github.endpoints).toEqual({ authorization: 'https://github.com/login/oauth/authorize', token: 'https://github.com/login/oauth/access_token', user: 'https://api.github.com/user', emails: 'https://api.github.com/user/emails' });
    expect(github.scopes).toEqual(['read:user', 'user:email']);
    expect(provider({ preset: 'orcid', issuer: 'https://sandbox.orcid.org', scopes: ['openid', '/read-limited'] }).scopes).toEqual(['openid', '/read-limited']);
    expect(Object.keys(PRESET_DEFAULTS).sort()).toEqual(['cilogon', 'github', 'keycloak', 'oidc', 'orcid']);
  });

  it('refuse what cannot work, naming the member', () => {
    const problems = (input: Record<string, unknown>) => {
      const parsed = identityProvidersSchema.safeParse([{ id: 'uni', name: 'University', clientId: 'tessera', ...input }]);
      return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    };
    expect(problems({ clientSecret: 's' })).toEqual(['0.issuer: is required for the oidc preset (the provider\'s issuer URL)']);
    expect(problems({ preset: 'keycloak' })).toContain('0.issuer: is required for the keycloak preset (the provider\'s issuer URL)');
    expect(problems({ preset: 'orcid' })).toEqual(['0.clientSecret: give exactly one of clientSecret, clientSecretFile, privateKey, privateKeyFile']);
    expect(problems({ preset: 'orcid', clientSecret: 's', privateKey: 'k' })).toHaveLength(1);
    expect(problems({ preset: 'github', privateKey: 'k' })).toEqual(['0.privateKey: the github preset authenticates with a client secret']);
    expect(problems({ preset: 'orcid', clientSecret: 's', endpoints: { authorization: 'https://a', token: 'https://b', user: 'https://c' } })[0]).toMatch(/^0\.endpoints: only for plain OAuth 2/);
    expect(problems({ id: 'Bad Id', preset: 'orcid', clientSecret: 's' })[0]).toMatch(/^0\.id:/);
    // Pages of their own under /login/: the password reset and the second step.
    for (const id of ['forgot', 'reset', 'second-factor']) expect(problems({ id, preset: 'orcid', clientSecret: 's' })).toEqual([`0.id: is a page of its own (/login/<id>): not forgot, reset, second-factor`]);
    expect(identityProvidersSchema.safeParse([{ id: 'a', name: 'A', preset: 'orcid', clientId: 'c', clientSecret: 's' }, { id: 'a', name: 'B', preset: 'orcid', clientId: 'c', clientSecret: 's' }]).error?.issues[0]?.message).toBe('declared twice');
  });

  it('gives the redirect URI an operator registers', () => {
    expect(redirectUriOf('https://auth.example.org', 'uni')).toBe('https://auth.example.org/login/uni/callback');
    expect(redirectUriOf('https://example.org/auth/', 'orcid')).toBe('https://example.org/auth/login/orcid/callback');
  });
});
