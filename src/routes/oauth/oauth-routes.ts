import { Router, type Request, type Response, type NextFunction } from 'express';
import type Provider from 'oidc-provider';
import type { AccountService } from '../../accounts/account-service.ts';
import type { Config } from '../../config/schema.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { PAGE_CSP, STYLESHEET_PATH } from '../../views/html.ts';
import { STYLESHEET } from '../../views/stylesheet.ts';
import type { DevicePollPolicy } from '../../oauth/device/device-poll-policy.ts';
import { createInteractionRoutes } from './interaction-routes.ts';
import { deviceAuthorizationGuard, userCodeRateLimit } from './device-guards.ts';
import { OIDC_ROUTES } from '../../oauth/provider/provider.ts';
import { answerOutagesWithPages } from '../../http/error-response.ts';

export interface OAuthRouteDependencies {
  config: Config;
  provider: Provider;
  devicePolls: DevicePollPolicy;
  accounts: AccountService;
  ephemeral: EphemeralStore;
  csrfKey: string;
  signIn: PasswordSignIn;
}

const PROVIDER_PATHS = new Set<string>([...Object.values(OIDC_ROUTES), '/.well-known/openid-configuration']);

/**
 * Everything OAuth: the checks oidc-provider lacks, the sign-in pages, the RFC 8414 discovery
 * alias, and oidc-provider itself for its own routes. Mounted before any body parser, because
 * oidc-provider reads request bodies itself.
 */
export function createOAuthRoutes(deps: OAuthRouteDependencies): Router {
  const router = Router();
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
  router.get('/.well-known/oauth-authorization-server', (req, res) => {
    req.url = '/.well-known/openid-configuration';
    toProvider(req, res);
  });

  router.use(createInteractionRoutes({ provider: deps.provider, accounts: deps.accounts, config: deps.config, signIn: deps.signIn, csrfKey: deps.csrfKey }));

  router.use((req: Request, res: Response, next: NextFunction) => {
    const browserPage = req.path === OIDC_ROUTES.code_verification || req.path.startsWith(`${OIDC_ROUTES.code_verification}/`) || req.path === OIDC_ROUTES.authorization || req.path.startsWith(`${OIDC_ROUTES.authorization}/`);
    if (PROVIDER_PATHS.has(req.path) || browserPage) {
      // Pages (and oidc-provider's auto-submitting form, whose script it allows by hash) need the
      // page policy rather than the JSON one.
      if (browserPage) res.setHeader('Content-Security-Policy', PAGE_CSP);
      toProvider(req, res);
      return;
    }
    next();
  });
  return router;
}
