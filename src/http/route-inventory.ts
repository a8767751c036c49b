import type { Express, RequestHandler } from 'express';
import { operationOf, type ApiOperation } from './api-operation.ts';
import { notAllowedError } from './refusals.ts';

// What express itself knows of the routes mounted on an app: used to answer 405 with Allow where a
// path exists under other methods (express 5 answers 404), and to list the routes a test must cover.

/** One route as registered: its path pattern (express syntax) and the methods it answers. */
export interface RouteEntry {
  path: string;
  methods: string[];
}

/** The parts of router 2.x's Layer and Route read here. */
interface RouterLayer {
  route?: { path: string | string[]; _methods(): string[]; stack: { handle: unknown }[] };
  handle?: { stack?: RouterLayer[] };
  match(path: string): boolean;
}

interface KnownRoute extends RouteEntry {
  layer: RouterLayer;
}

/** Every route of the app and its nested routers (mounted bare: their paths are absolute), catch-alls left out. */
function knownRoutes(app: Express): KnownRoute[] {
  const found: KnownRoute[] = [];
  const walk = (stack: RouterLayer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const methods = layer.route._methods();
        if (methods.includes('*')) continue;
        for (const path of [layer.route.path].flat()) found.push({ path, methods, layer });
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: RouterLayer[] } }).router.stack);
  return found;
}

/** The app's routes with the methods of each path merged, in registration order. */
export function listRoutes(app: Express): RouteEntry[] {
  const byPath = new Map<string, Set<string>>();
  for (const { path, methods } of knownRoutes(app)) {
    const merged = byPath.get(path) ?? new Set<string>();
    for (const method of methods) merged.add(method);
    byPath.set(path, merged);
  }
  return [...byPath].map(([path, methods]) => ({ path, methods: [...methods] }));
}

/**
 * The operations declared by the routes of the app (api-operation.ts route()), in registration
 * order: what /openapi.json describes. A route registered without a declaration is not among them.
 */
export function declaredOperations(app: Express): ApiOperation[] {
  const found = new Set<ApiOperation>();
  for (const { layer } of knownRoutes(app)) {
    for (const step of layer.route?.stack ?? []) {
      const operation = operationOf(step.handle);
      if (operation) found.add(operation);
    }
  }
  return [...found];
}

/**
 * Last before the 404: a path some route of the app serves under other methods answers 405 with
 * Allow, in the JSON error shape. The routes are read once, at the first request that gets here.
 */
export function methodNotAllowedForKnownPaths(app: Express): RequestHandler {
  let routes: KnownRoute[] | undefined;
  return (req, _res, next) => {
    routes ??= knownRoutes(app);
    const allowed = new Set<string>();
    for (const { layer, methods } of routes) {
      let matches = false;
      try {
        matches = layer.match(req.path);
      } catch {
        // A path parameter that does not decode: no route of this path answers it.
      }
      if (matches) for (const method of methods) allowed.add(method);
    }
    if (allowed.size === 0 || allowed.has(req.method)) {
      next();
      return;
    }
    next(notAllowedError(req.method, [...allowed]));
  };
}
