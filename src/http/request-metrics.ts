import type { IncomingMessage } from 'node:http';
import type { Metrics } from '../metrics/metrics.ts';
import type { RawHandler } from './raw-http.ts';

// Counts and times every answered request by its route pattern, never its path: /api/tokens/:id,
// not the id (a path would leak what it names and make a series per request).

/** A route as the server knows it: a pattern with express's :params. */
interface RoutePattern {
  path: string;
}

/** The label for requests no route matched (404s, a scanner's guesses): one series for all of them. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Wraps the server's handler. `routes` are read at the first request (every route is mounted by
 * then): express's own match is used where it made one (req.route), otherwise the first of
 * `routes` whose pattern matches the path (the node:http fast routes, oidc-provider's).
 */
export function countRequests(metrics: Metrics, routes: () => readonly RoutePattern[], handler: RawHandler): RawHandler {
  let known: { exact: Map<string, string>; patterns: { path: string; match: RegExp }[] } | undefined;
  const routeOf = (req: IncomingMessage): string => {
    const matched = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
    if (typeof matched.route?.path === 'string') return (matched.baseUrl ?? '') + matched.route.path;
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    known ??= compile(routes());
    return known.exact.get(path) ?? known.patterns.find(({ match }) => match.test(path))?.path ?? UNMATCHED_ROUTE;
  };
  return (req, res) => {
    const started = performance.now();
    res.on('finish', () => metrics.requestAnswered(routeOf(req), req.method ?? 'GET', res.statusCode, (performance.now() - started) / 1000));
    handler(req, res);
  };
}

/** Paths without parameters found in one lookup (the hot routes are among them), the others by pattern. */
function compile(routes: readonly RoutePattern[]) {
  const exact = new Map<string, string>();
  const patterns: { path: string; match: RegExp }[] = [];
  for (const { path } of routes) {
    if (!/[:*{(]/.test(path)) {
      if (!exact.has(path)) exact.set(path, path);
    } else {
      patterns.push({ path, match: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}$`) });
    }
  }
  return { exact, patterns };
}
