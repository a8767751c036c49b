import express, { type Express, type RequestHandler, type Router } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { LOGO_PATH, type Branding } from '../views/branding.ts';
import { errorHandler } from './error-response.ts';
import { notFound } from './refusals.ts';
import { requestContext } from './request-context.ts';
import { requireHttps } from './require-https.ts';
import { methodNotAllowedForKnownPaths } from './route-inventory.ts';
import type { TrustProxy } from './trust-proxy.ts';

export interface AppDependencies {
  config: Config;
  logger: Logger;
  /** http.trustProxy, compiled (trust-proxy.ts). */
  trustProxy: TrustProxy;
  /** The issuer's routes (oidc-provider and its pages); they read their own request bodies. */
  oauthRoutes?: Router;
  /** Routes that read their own request bodies (a signature over the bytes as sent), mounted before the body parsers. */
  rawBodyRoutes?: Router[];
  /** Routes and middleware mounted after the body parsers, in order. */
  apiRoutes?: { paths?: string[]; router: Router | RequestHandler }[];
}

/** Builds the express application from its routes; it never listens (server.ts does). */
export function createApp({ config, logger, trustProxy, oauthRoutes, rawBodyRoutes = [], apiRoutes = [] }: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxy);
  app.set('json spaces', 0);
  // Every page finds the operator's branding here (views/branding.ts brandingOf), set once.
  const { logoFile, ...branding } = config.branding;
  app.locals.branding = { ...branding, ...(logoFile ? { logoUrl: LOGO_PATH } : {}) } satisfies Branding;

  app.use(requestContext(logger));
  app.use(
    helmet({
      // JSON by default: nothing may load. Pages that render HTML set their own narrower policy.
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] } },
      strictTransportSecurity: new URL(config.issuer).protocol === 'https:',
    }),
  );
  if (new URL(config.issuer).protocol === 'https:') app.use(requireHttps(['/healthz', '/readyz'], (address) => trustProxy(address, 0)));
  if (oauthRoutes) app.use(oauthRoutes);
  for (const router of rawBodyRoutes) app.use(router);
  app.use(express.json({ limit: config.http.bodyLimit }));
  app.use(express.urlencoded({ extended: false, limit: config.http.bodyLimit }));

  // (express 5 matches nothing for app.use(['/'], …): routers for every path are mounted bare.)
  for (const { paths, router } of apiRoutes) {
    if (paths) app.use(paths, router);
    else app.use(router);
  }

  app.use(methodNotAllowedForKnownPaths(app));
  app.use(notFound());
  app.use(errorHandler());
  return app;
}
