import { Router, type Request, type Response, type NextFunction } from 'express';
import type Provider from 'oidc-provider';
import type { AccountService } from '../../accounts/account-service.ts';
import type { Config } from '../../config/schema.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { brandingOf } from '../../views/branding.ts';
import { pageCspFor, STYLESHEET_PATH } from '../../views/html.ts';
import { STYLESHEET } from '../../views/stylesheet.ts';
import type { DevicePollPolicy } from '../../oauth/device/device-poll-policy.ts';
import { createInteractionRoutes } from './interaction-routes.ts';
import type { SecondFactorStep } from '../second-factor/second-factor-step.ts';
import { createUserinfoRoutes, type UserinfoDependencies } from './userinfo-endpoint.ts';
import { deviceAuthorizationGuard, userCodeRateLimit } from './device-guards.ts';
import { OIDC_ROUTES } from '../../oauth/provider/provider.ts';
import { answerOutagesWithPages } from '../../http/error-response.ts';
import { answersPreflight, providerMethodsAt } from '../../oauth/provider/internals.ts';
import { oauthNotAllowedError } from '../../http/refusals.ts';
import { readyForProvider } from '../../http/raw-http.ts';
import { OAuthError } from '../../shared/errors.ts';
import type { AuditLog } from '../../audit/audit-log.ts';

export interface OAuthRouteDependencies {
  config: Config;
  provider: Provider;
  devicePolls: DevicePollPolicy;
  accounts: AccountService;
  ephemeral: EphemeralStore;
  csrfKey: string;
  signIn: PasswordSignIn;
  /** The second step after the password on the sign-in page. */
  secondStep: SecondFactorStep;
  /** Where device and authorization decisions are recorded. */
  audit: Pick<AuditLog, 'recordInBackground'>;
  /** Whether X-Forwarded-* from this peer address are believed (express's compiled trust proxy). */
  trustsProxy: (address: string) => boolean;
  /** OpenID Connect's UserInfo endpoint, answered by Tessera (userinfo-endpoint.ts). */
  userinfo: UserinfoDependencies;
}

/** A request whose Host (or a trusted proxy's X-Forwarded-Host/-Proto) names no URL origin. */
export const UNUSABLE_ORIGIN = new OAuthError(400, 'invalid_request', 'the Host header does not name a valid origin');

const PROVIDER_PATHS = new Set<string>([...Object.values(OIDC_ROUTES), '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);

/** The pages oidc-provider serves under a path parameter (a sign-in's or device login's uid). */
const PROVIDER_PAGE_PATTERNS = [`${OIDC_ROUTES.authorization}/:uid`, `${OIDC_ROUTES.code_verification}/:uid`];

/** The routes this router hands to oidc-provider, with the methods oidc-provider serves at each. */
export function providerRoutes(provider: Provider): { path: string; methods: string[] }[] {
  return [...PROVIDER_PATHS, ...PROVIDER_PAGE_PATTERNS].map((path) => ({ path, methods: providerMethodsAt(provider, path) })).filter((route) => route.methods.length > 0);
}

/**
 * Everything OAuth: the checks oidc-provider lacks, the sign-in pages, the RFC 8414 discovery
 * alias, and oidc-provider itself for its own routes. Mounted before any body parser, because
 * oidc-provider reads request bodies itself.
 */
export function createOAuthRoutes(deps: OAuthRouteDependencies): Router {
  // Strict and case-sensitive, as the hand-over to oidc-provider below: a guard's route matches
  // exactly the paths that reach oidc-provider (`/oauth/device/code/` is neither).
  const router = Router({ strict: true, caseSensitive: true });
  const callback = deps.provider.callback();
  const toProvider = (req: Request, res: Response) => {
    void callback(req, res);
  };

  router.get(STYLESHEET_PATH, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').type('text/css').send(STYLESHEET);
  });

  router.post(OIDC_ROUTES.device_authorization, deviceAuthorizationGuard(deps.config));
  // The user-code page's guard answers a store outage as a page, as oidc-provider does behind it.
  router.use(OIDC_ROUTES.code_verification, (_req, res, next) => {
    answerOutagesWithPages(res);
    next();
  });
  router.post(OIDC_ROUTES.code_verification, userCodeRateLimit(deps.config, deps.ephemeral));

  // RFC 8414 metadata: the same document as OpenID discovery, at its own well-known name.
  router.get('/.well-known/oauth-authorization-server', (req, res, next) => {
    if (!readyForProvider(req, deps.trustsProxy)) {
      next(UNUSABLE_ORIGIN);
      return;
    }
    req.url = '/.well-known/openid-configuration';
    toProvider(req, res);
  });

  router.use(createUserinfoRoutes(deps.userinfo));
  router.use(createInteractionRoutes({ provider: deps.provider, accounts: deps.accounts, config: deps.config, signIn: deps.signIn, csrfKey: deps.csrfKey, audit: deps.audit, secondStep: deps.secondStep }));

  router.use((req: Request, res: Response, next: NextFunction) => {
    const browserPage = req.path === OIDC_ROUTES.code_verification || req.path.startsWith(`${OIDC_ROUTES.code_verification}/`) || req.path === OIDC_ROUTES.authorization || req.path.startsWith(`${OIDC_ROUTES.authorization}/`);
    if (PROVIDER_PATHS.has(req.path) || browserPage) {
      // A path oidc-provider serves under other methods is 405 with Allow in the OAuth shape (its
      // own answer would be a text/plain 404); one it serves under none is not a route at all.
      const allowed = providerMethodsAt(deps.provider, req.path);
      if (allowed.length === 0) {
        next();
        return;
      }
      const preflight = req.method === 'OPTIONS' && req.get('access-control-request-method') !== undefined && answersPreflight(deps.provider, req.path);
      if (!allowed.includes(req.method) && !preflight) {
        next(oauthNotAllowedError(req.method, allowed));
        return;
      }
      if (!readyForProvider(req, deps.trustsProxy)) {
        next(UNUSABLE_ORIGIN);
        return;
      }
      // A sign-in resumes (/oauth/authorize/<uid>) from what its interaction stored; a query there
      // is never oidc-provider's own, and one naming a client made its error handler fail (it
      // reads parameters the resume never assembled): 500 instead of the error page.
      const query = req.url.indexOf('?');
      if (query !== -1 && req.path.startsWith(`${OIDC_ROUTES.authorization}/`)) req.url = req.url.slice(0, query);
      // Pages (and oidc-provider's auto-submitting form, whose script it allows by hash) need the
      // page policy rather than the JSON one.
      if (browserPage) res.setHeader('Content-Security-Policy', pageCspFor(brandingOf(res)));
      toProvider(req, res);
      return;
    }
    next();
  });
  return router;
}
