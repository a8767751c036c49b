import { describe, expect, it } from '@jest/globals';
import * as server from '../../../src/shared/path-scopes.ts';
import * as verifier from '../../../packages/verifier/src/path-scopes.ts';

// The server's rules (src/shared/path-scopes.ts) and the verifier package's copy
// (packages/verifier/src/path-scopes.ts) decide one table of cases the same way.

const IMPLEMENTATIONS = [
  ['server', server],
  ['@tessera/verifier', verifier],
] as const;

/** [held scopes, path-scoped name, request path, allowed?] */
const DECISIONS: [string[], string, string, boolean][] = [
  [['deposit:write:/records/123'], 'deposit:write', '/records/123', true],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123/', true],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123/files', true],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123/files?download=1', true],
  [['deposit:write:/records/123'], 'deposit:write', '/records/1234', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records/12', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123/../1234', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123/%2e%2e/1234', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123%2Ffiles', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records//123', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123/./x', false],
  [['deposit:write:/records/123'], 'deposit:write', '/records/%31%32%33/x', true],
  [['deposit:write:/records/123'], 'deposit:write', '/records/123/%zz', false],
  [['deposit:write:/records/123'], 'deposit:write', 'records/123', false],
  [['deposit:write:/records/123'], 'deposit:actions', '/records/123', false],
  [['deposit:write'], 'deposit:write', '/anything/at/all', true],
  [['deposit:write:/'], 'deposit:write', '/anything', true],
  [['storage.read:/a'], 'storage.read', '/ab', false],
  [['storage.read:/a/'], 'storage.read', '/a/b', true],
  [['storage.read:/a/../b'], 'storage.read', '/b', false],
  [['storage.read:/a//b'], 'storage.read', '/a/b', false],
  [['storage.read:/a', 'storage.read:/c'], 'storage.read', '/c/d', true],
  [['storage.readx:/a'], 'storage.read', '/a', false],
];

describe.each(IMPLEMENTATIONS)('path scopes (%s)', (_name, rules) => {
  it.each(DECISIONS)('%j lets %s reach %s: %s', (held, name, path, allowed) => {
    expect(rules.allowsPath(held, name, path)).toBe(allowed);
  });

  it('normalises a scope path, refusing what could read as another path', () => {
    expect(rules.parseScopePath('/atlas/data/')).toMatchObject({ ok: true, path: '/atlas/data' });
    expect(rules.parseScopePath('/')).toMatchObject({ ok: true, path: '/', segments: [] });
    for (const bad of ['atlas', '/a//b', '/a/./b', '/a/../b', '/a/%2e', '/a b', '/a"b', `/${'x'.repeat(300)}`]) {
      expect(rules.parseScopePath(bad)).toMatchObject({ ok: false });
    }
  });
});

describe('the server\'s reading of scopes against the catalog', () => {
  const pathScoped = new Set(['deposit:write', 'storage.read', 'wlcg.groups']);

  it('reads plain scopes, path scopes and refused paths', () => {
    expect(server.readScope('read', pathScoped)).toEqual({ kind: 'plain', scope: 'read' });
    expect(server.readScope('deposit:write:/records/1/', pathScoped)).toMatchObject({ kind: 'path', canonical: 'deposit:write:/records/1' });
    expect(server.readScope('deposit:write:/', pathScoped)).toMatchObject({ kind: 'path', canonical: 'deposit:write' });
    expect(server.readScope('deposit:write:/a/../b', pathScoped)).toMatchObject({ kind: 'invalid', problem: expect.stringContaining('".."') });
    // A name that is not path-scoped keeps its colon-slash as a plain (unknown) scope.
    expect(server.readScope('read:/x', pathScoped)).toEqual({ kind: 'plain', scope: 'read:/x' });
  });

  it('narrows only: a held path covers the same and deeper paths of the same name', () => {
    expect(server.scopeCovers('storage.read:/atlas', 'storage.read:/atlas/data', pathScoped)).toBe(true);
    expect(server.scopeCovers('storage.read', 'storage.read:/atlas', pathScoped)).toBe(true);
    expect(server.scopeCovers('storage.read:/atlas', 'storage.read', pathScoped)).toBe(false);
    expect(server.scopeCovers('storage.read:/atlas', 'storage.read:/atlasx', pathScoped)).toBe(false);
    expect(server.scopeCovers('storage.read:/atlas/data', 'storage.read:/atlas', pathScoped)).toBe(false);
    expect(server.scopeCovers('deposit:write:/atlas', 'storage.read:/atlas', pathScoped)).toBe(false);
  });

  it('matches group scopes exactly: a group is a membership, not a tree', () => {
    expect(server.scopeCovers('wlcg.groups:/atlas', 'wlcg.groups:/atlas', pathScoped)).toBe(true);
    expect(server.scopeCovers('wlcg.groups:/atlas', 'wlcg.groups:/atlas/production', pathScoped)).toBe(false);
  });

  it('checks a scope against the catalog, answering its normal form', () => {
    const catalog = { read: 'Read', 'deposit:write': 'Deposit' };
    expect(server.checkCatalogScope('deposit:write:/r/1/', catalog, pathScoped)).toEqual({ ok: true, scope: 'deposit:write:/r/1' });
    expect(server.checkCatalogScope('read', catalog, pathScoped)).toEqual({ ok: true, scope: 'read' });
    expect(server.checkCatalogScope('publish', catalog, pathScoped)).toEqual({ ok: false, problem: 'unknown scope "publish"' });
    expect(server.checkCatalogScope('deposit:write:/r/%41', catalog, pathScoped)).toMatchObject({ ok: false, problem: expect.stringContaining('percent-encoded') });
  });
});

describe.each(IMPLEMENTATIONS)('capabilities by method (%s)', (_name, { capabilitiesFor }) => {
  it('maps methods to WLCG and SciTokens capabilities', () => {
    expect(capabilitiesFor('wlcg', 'GET')).toEqual(['storage.read']);
    expect(capabilitiesFor('wlcg', 'head')).toEqual(['storage.read']);
    expect(capabilitiesFor('wlcg', 'PROPFIND')).toEqual(['storage.read']);
    expect(capabilitiesFor('wlcg', 'PUT')).toEqual(['storage.create', 'storage.modify']);
    expect(capabilitiesFor('wlcg', 'MKCOL')).toEqual(['storage.create', 'storage.modify']);
    expect(capabilitiesFor('wlcg', 'DELETE')).toEqual(['storage.modify']);
    expect(capabilitiesFor('scitokens', 'GET')).toEqual(['read']);
    expect(capabilitiesFor('scitokens', 'DELETE')).toEqual(['write']);
  });
});
