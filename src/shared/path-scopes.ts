// Path-scoped scopes ("storage.read:/atlas/data", "deposit:write:/records/123"): their syntax, the
// normalised form of a path, and the containment rule of the WLCG and SciTokens profiles (a grant
// for /a covers /a and /a/b, never /ab). The rules and their reasons: docs/configuration.md#path-scopes.
// packages/verifier/src/path-scopes.ts holds the same rules for resource servers (it may not import
// the server); test/unit/shared/path-scopes.test.ts runs one table of cases against both.

/** What a path segment of a scope may hold: RFC 3986 pchar without percent-encoding. */
const SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;
/** Longest path a scope may carry. */
export const MAX_SCOPE_PATH_LENGTH = 256;

export type PathResult = { ok: true; path: string; segments: string[] } | { ok: false; problem: string };

/** A path scope split into its catalog name and its path ("/" when the scope names no path). */
export interface PathScope {
  base: string;
  path: string;
  segments: string[];
}

function joined(segments: string[]): PathResult {
  return { ok: true, path: `/${segments.join('/')}`, segments };
}

/**
 * The path of a scope, normalised: one trailing slash is dropped ("/a/" is "/a"); anything that
 * could read as another path is refused rather than rewritten (empty segments, "." and "..",
 * percent-encoding, characters outside RFC 3986's pchar).
 */
export function parseScopePath(raw: string): PathResult {
  if (!raw.startsWith('/')) return { ok: false, problem: 'a path must start with "/"' };
  if (raw.length > MAX_SCOPE_PATH_LENGTH) return { ok: false, problem: `a path may have at most ${MAX_SCOPE_PATH_LENGTH} characters` };
  if (raw === '/') return joined([]);
  if (raw.includes('%')) return { ok: false, problem: 'a path in a scope may not be percent-encoded: write the characters themselves' };
  const parts = raw.slice(1).split('/');
  if (parts.at(-1) === '') parts.pop();
  for (const part of parts) {
    if (part === '') return { ok: false, problem: 'a path may not hold "//"' };
    if (part === '.' || part === '..') return { ok: false, problem: 'a path may not hold "." or ".." segments' };
    if (!SEGMENT.test(part)) return { ok: false, problem: 'a path may hold only letters, digits and - . _ ~ ! $ & \' ( ) * + , ; = : @ between slashes' };
  }
  return joined(parts);
}

/**
 * The path of a request, as a resource server compares it with a scope: the query and fragment
 * dropped, each segment percent-decoded once. Refused (so never allowed): a path not starting with
 * "/", empty segments, "." and "..", an encoded "/" or NUL, bad percent-encoding. One trailing
 * slash is dropped.
 */
export function parseRequestPath(raw: string): PathResult {
  const path = raw.split(/[?#]/, 1)[0]!;
  if (!path.startsWith('/')) return { ok: false, problem: 'a request path must start with "/"' };
  if (path === '/') return joined([]);
  const parts = path.slice(1).split('/');
  if (parts.at(-1) === '') parts.pop();
  const segments: string[] = [];
  for (const part of parts) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      return { ok: false, problem: 'the request path holds malformed percent-encoding' };
    }
    if (decoded === '') return { ok: false, problem: 'the request path holds "//"' };
    if (decoded === '.' || decoded === '..') return { ok: false, problem: 'the request path holds "." or ".." segments' };
    if (decoded.includes('/') || decoded.includes('\0')) return { ok: false, problem: 'the request path holds an encoded "/" or NUL' };
    segments.push(decoded);
  }
  return { ok: true, path: `/${segments.join('/')}`, segments };
}

/** Whether a grant's path covers a path: the same segments, or the grant's followed by more. */
export function pathContains(grant: readonly string[], path: readonly string[]): boolean {
  return grant.length <= path.length && grant.every((segment, i) => segment === path[i]);
}

/** The catalog name and the raw path of "name:/path", or undefined when the scope carries no path. */
function splitScope(scope: string): { base: string; rawPath: string } | undefined {
  const at = scope.indexOf(':/');
  return at > 0 ? { base: scope.slice(0, at), rawPath: scope.slice(at + 1) } : undefined;
}

export type ScopeReading =
  | { kind: 'plain'; scope: string }
  | { kind: 'path'; scope: PathScope; canonical: string }
  | { kind: 'invalid'; problem: string };

/**
 * How a scope reads against the catalog's path-scoped names: a plain scope, a path scope (the bare
 * name of a path-scoped entry is its path "/"), or a path the rules refuse.
 */
export function readScope(scope: string, pathScoped: ReadonlySet<string>): ScopeReading {
  if (pathScoped.has(scope)) return { kind: 'path', scope: { base: scope, path: '/', segments: [] }, canonical: scope };
  const split = splitScope(scope);
  if (!split || !pathScoped.has(split.base)) return { kind: 'plain', scope };
  const path = parseScopePath(split.rawPath);
  if (!path.ok) return { kind: 'invalid', problem: `"${scope}": ${path.problem}` };
  const canonical = path.segments.length === 0 ? split.base : `${split.base}:${path.path}`;
  return { kind: 'path', scope: { base: split.base, path: path.path, segments: path.segments }, canonical };
}

/**
 * Whether holding `held` lets one have `wanted`: the same plain scope, or a path scope of the same
 * name whose path contains the wanted one. Names in `exact` (group memberships such as
 * wlcg.groups) are memberships, not trees: only the same path covers.
 */
export function scopeCovers(held: string, wanted: string, pathScoped: ReadonlySet<string>, exact: ReadonlySet<string> = EXACT_PATH_SCOPES): boolean {
  if (held === wanted) return true;
  const h = readScope(held, pathScoped);
  const w = readScope(wanted, pathScoped);
  if (h.kind !== 'path' || w.kind !== 'path' || h.scope.base !== w.scope.base) return false;
  if (exact.has(w.scope.base)) return h.scope.path === w.scope.path;
  return pathContains(h.scope.segments, w.scope.segments);
}

/** Whether any of `held` covers `wanted` (scopeCovers). */
export function anyCovers(held: Iterable<string>, wanted: string, pathScoped: ReadonlySet<string>): boolean {
  for (const scope of held) if (scopeCovers(scope, wanted, pathScoped)) return true;
  return false;
}

/** Path scopes whose paths name groups (WLCG's wlcg.groups:/vo/group): matched exactly, never by containment. */
export const EXACT_PATH_SCOPES: ReadonlySet<string> = new Set(['wlcg.groups']);

/**
 * Whether `held` lets a request to `requestPath` use the path-scoped `base`: some held scope of
 * that name covers the path. A path that parseRequestPath refuses is never allowed.
 */
export function allowsPath(held: Iterable<string>, base: string, requestPath: string): boolean {
  const path = parseRequestPath(requestPath);
  if (!path.ok) return false;
  const pathScoped = new Set([base]);
  for (const scope of held) {
    const reading = readScope(scope, pathScoped);
    if (reading.kind === 'path' && reading.scope.base === base && pathContains(reading.scope.segments, path.segments)) return true;
  }
  return false;
}

/**
 * A scope checked against a catalog: its canonical form ("deposit:write:/records/123/" is
 * "deposit:write:/records/123"), or why it is not a scope of the catalog.
 */
export function checkCatalogScope(scope: string, catalog: Readonly<Record<string, unknown>>, pathScoped: ReadonlySet<string>): { ok: true; scope: string } | { ok: false; problem: string } {
  const reading = readScope(scope, pathScoped);
  if (reading.kind === 'invalid') return { ok: false, problem: reading.problem };
  if (reading.kind === 'path') return { ok: true, scope: reading.canonical };
  return Object.hasOwn(catalog, scope) ? { ok: true, scope } : { ok: false, problem: `unknown scope "${scope}"` };
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS', 'PROPFIND']);
const CREATES = new Set(['PUT', 'POST', 'MKCOL', 'COPY']);

/**
 * The capabilities, any one of which allows a request method on a path (WLCG: storage.read for
 * reading, storage.create or storage.modify for writing, storage.modify for the rest; SciTokens:
 * read or write). The same rule as @tessera/verifier's capabilitiesFor.
 */
export function capabilitiesFor(profile: 'wlcg' | 'scitokens', method: string): string[] {
  const verb = method.toUpperCase();
  if (profile === 'wlcg') {
    if (READS.has(verb)) return ['storage.read'];
    if (CREATES.has(verb)) return ['storage.create', 'storage.modify'];
    return ['storage.modify'];
  }
  return READS.has(verb) ? ['read'] : ['write'];
}
