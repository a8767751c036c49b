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
  let patterns: { path: string; match: RegExp }[] | undefined;
  const routeOf = (req: IncomingMessage): string => {
    const matched = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
    if (typeof matched.route?.path === 'string') return (matched.baseUrl ?? '') + matched.route.path;
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    patterns ??= routes().map(({ path: pattern }) => ({ path: pattern, match: new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}$`) }));
    return patterns.find(({ match }) => match.test(path))?.path ?? UNMATCHED_ROUTE;
  };
  return (req, res) => {
    const started = performance.now();
    res.once('finish', () => metrics.requestAnswered(routeOf(req), req.method ?? 'GET', res.statusCode, (performance.now() - started) / 1000));
    handler(req, res);
  };
}
