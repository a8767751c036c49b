// Path-scoped scopes at a resource server: does a credential's "storage.read:/atlas" or
// "deposit:write:/records/123" cover the path of this request? The containment rule of the WLCG and
// SciTokens profiles: a grant for /a covers /a and /a/b, never /ab. The same rules as Tessera's
// own (src/shared/path-scopes.ts); one table of cases runs against both.

export type PathResult = { ok: true; path: string; segments: string[] } | { ok: false; problem: string };

const SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;
const MAX_SCOPE_PATH_LENGTH = 256;

/** The path of a scope, normalised ("/a/" is "/a"); "//", "." and "..", percent-encoding are refused. */
export function parseScopePath(raw: string): PathResult {
  if (!raw.startsWith('/')) return { ok: false, problem: 'a path must start with "/"' };
  if (raw.length > MAX_SCOPE_PATH_LENGTH) return { ok: false, problem: `a path may have at most ${MAX_SCOPE_PATH_LENGTH} characters` };
  if (raw === '/') return { ok: true, path: '/', segments: [] };
  if (raw.includes('%')) return { ok: false, problem: 'a path in a scope may not be percent-encoded' };
  const parts = raw.slice(1).split('/');
  if (parts.at(-1) === '') parts.pop();
  for (const part of parts) {
    if (part === '') return { ok: false, problem: 'a path may not hold "//"' };
    if (part === '.' || part === '..') return { ok: false, problem: 'a path may not hold "." or ".." segments' };
    if (!SEGMENT.test(part)) return { ok: false, problem: 'a path holds a character outside RFC 3986 pchar' };
  }
  return { ok: true, path: `/${parts.join('/')}`, segments: parts };
}

/**
 * The path of a request: query and fragment dropped, each segment percent-decoded once. Refused
 * (never allowed): "//", "." and "..", an encoded "/" or NUL, bad percent-encoding.
 */
export function parseRequestPath(raw: string): PathResult {
  const path = raw.split(/[?#]/, 1)[0]!;
  if (!path.startsWith('/')) return { ok: false, problem: 'a request path must start with "/"' };
  if (path === '/') return { ok: true, path: '/', segments: [] };
  const parts = path.slice(1).split('/');
  if (parts.at(-1) === '') parts.pop();
  const segments: string[] = [];
  for (const part of parts) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      return { ok: false, problem: 'malformed percent-encoding' };
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

/**
 * Whether `scopes` let a request to `requestPath` use the path-scoped scope `name`: `name` itself
 * (every path), or "name:/p" with /p containing the path. A malformed path is never allowed.
 */
export function allowsPath(scopes: Iterable<string>, name: string, requestPath: string): boolean {
  const path = parseRequestPath(requestPath);
  if (!path.ok) return false;
  for (const scope of scopes) {
    if (scope === name) return true;
    if (!scope.startsWith(`${name}:/`)) continue;
    const granted = parseScopePath(scope.slice(name.length + 1));
    if (granted.ok && pathContains(granted.segments, path.segments)) return true;
  }
  return false;
}

/** The token profiles whose capabilities a request's method maps to (docs/wlcg-tokens.md). */
export type CapabilityProfile = 'wlcg' | 'scitokens';

const READS = new Set(['GET', 'HEAD', 'OPTIONS', 'PROPFIND']);
const CREATES = new Set(['PUT', 'POST', 'MKCOL', 'COPY']);

/**
 * The capabilities, any one of which allows a request with this method, by profile:
 * WLCG: reading is storage.read; PUT, POST, MKCOL and COPY add data (storage.create, or
 * storage.modify, which includes it); anything else changes data (storage.modify).
 * SciTokens: reading is read; anything else is write.
 */
export function capabilitiesFor(profile: CapabilityProfile, method: string): string[] {
  const verb = method.toUpperCase();
  if (profile === 'wlcg') {
    if (READS.has(verb)) return ['storage.read'];
    if (CREATES.has(verb)) return ['storage.create', 'storage.modify'];
    return ['storage.modify'];
  }
  return READS.has(verb) ? ['read'] : ['write'];
}
