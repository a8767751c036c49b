import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../src/config/load.ts';

// oauth.resources.<aud>.profile and the path-scoped entries of the scope catalog (docs/configuration.md).

const WLCG = { 'https://se.example.org': { format: 'jwt', profile: 'wlcg' } };

describe('token profiles and path scopes in the configuration', () => {
  it('keeps today\'s resources and catalog as they were: no profile is RFC 9068, descriptions stay strings', () => {
    const config = loadConfig({ env: {} });
    expect(config.oauth.resources['urn:tessera:api']).toEqual({ format: 'opaque' });
    expect(config.scopes.read).toBe('Read-only access to records and depositions.');
    expect(config.pathScopes).toEqual([]);
  });

  it('reads a path-scoped entry beside the plain ones', () => {
    const config = loadConfig({ env: {}, overrides: { scopes: { 'deposit:write': { description: 'Deposit files', paths: true }, 'storage.read': { description: 'Read storage', paths: true } } } });
    expect(config.scopes['deposit:write']).toBe('Deposit files');
    expect(config.pathScopes).toEqual(['deposit:write', 'storage.read']);
    expect(loadConfig({ env: {}, overrides: { oauth: { resources: WLCG } } }).oauth.resources['https://se.example.org']).toEqual({ format: 'jwt', profile: 'wlcg' });
  });

  it('refuses a JWT profile on opaque tokens, or signed with an algorithm its verifiers refuse', () => {
    expect(() => loadConfig({ env: {}, overrides: { oauth: { resources: { 'https://se.example.org': { format: 'opaque', profile: 'scitokens' } } } } })).toThrow(
      /oauth\.resources\.https:\/\/se\.example\.org\.profile: the scitokens profile is a JWT profile: set format to "jwt" \(it is "opaque"\)/,
    );
    expect(() => loadConfig({ env: {}, overrides: { oauth: { resources: WLCG, signingAlgorithm: 'EdDSA' } } })).toThrow(/wlcg tokens must be signed with RS256 or ES256/);
    expect(() => loadConfig({ env: {}, overrides: { oauth: { resources: { x: { format: 'jwt', profile: 'oidc' } } } } })).toThrow(/oauth\.resources\.x\.profile/);
  });

  it('checks path scopes given to clients and accounts: the name must be path-scoped and the path well formed', () => {
    const scopes = { 'storage.read': { description: 'Read storage', paths: true } };
    const client = (clientScopes: string[]) => ({ clientId: 'transfer', name: 'Transfer', kind: 'service', secretSha256: 'a'.repeat(64), scopes: clientScopes });
    expect(loadConfig({ env: {}, overrides: { scopes, clients: [client(['storage.read:/atlas'])] } }).clients[0]!.scopes).toEqual(['storage.read:/atlas']);
    expect(() => loadConfig({ env: {}, overrides: { scopes, clients: [client(['storage.read:/atlas/../cms'])] } })).toThrow(/clients\.0\.scopes\.0: "storage\.read:\/atlas\/\.\.\/cms": a path may not hold "\." or "\.\." segments/);
    expect(() => loadConfig({ env: {}, overrides: { scopes, clients: [client(['read:/atlas'])] } })).toThrow(/clients\.0\.scopes\.0: "read:\/atlas" is not in the scope catalog/);
    expect(() => loadConfig({ env: {}, overrides: { scopes, accounts: { defaultScopes: ['storage.read:/a//b'] } } })).toThrow(/accounts\.defaultScopes\.0: .*"\/\/"/);
  });

  it('refuses an entry with members it does not know', () => {
    expect(() => loadConfig({ env: {}, overrides: { scopes: { 'storage.read': { description: 'Read', path: true } } } })).toThrow(/scopes\.storage\.read/);
  });
});
