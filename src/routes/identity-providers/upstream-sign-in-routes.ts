import { randomBytes } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { default as Provider } from 'oidc-provider';
import type { AccountService } from '../../accounts/account-service.ts';
import type { User } from '../../accounts/user.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import type { Config } from '../../config/schema.ts';
import { cookieValue } from '../../credentials/cookies.ts';
import { answerOutagesWithPages } from '../../http/error-response.ts';
import { localPath } from '../../http/local-path.ts';
import { sendPage } from '../../http/pages.ts';
import type { FlowOrigin } from '../../identity-providers/flow-store.ts';
import { UpstreamSignInError, type IdentityProviderService, type RequestFacts } from '../../identity-providers/identity-provider-service.ts';
import type { ApiSessionStore } from '../../sessions/api-session-store.ts';
import { AppError } from '../../shared/errors.ts';
import { html } from '../../views/html.ts';
import { createBrowserSessionStarter } from '../settings/browser-session.ts';
import type { CallerAuthenticator } from '../settings/caller.ts';
import { secondFactorEnrolmentNeededPage } from '../second-factor/interaction-second-step.ts';
import type { SecondFactorStep } from '../second-factor/second-factor-step.ts';
import { nav } from '../settings/settings-pages.ts';
import { failurePage, signInMethodsBody } from './identity-provider-pages.ts';

// Sign-in through upstream identity providers (docs/sign-in-providers.md): the start from the
// settings sign-in (/login/<id>) or from an OAuth/device sign-in (/interaction/<uid>/login/<id>),
// the callback the provider sends the browser to (/login/<id>/callback), and the settings page
// where a person links and unlinks providers.

export interface UpstreamSignInRouteDependencies {
  config: Config;
  provider: Provider;
  identityProviders: IdentityProviderService;
  accounts: AccountService;
  sessions: ApiSessionStore;
  audit: AuditLog;
  callers: CallerAuthenticator;
  /** The second step after a provider's sign-in, as after a password (routes/second-factor/second-factor-step.ts). */
  secondStep: SecondFactorStep;
}

/** Binds a flow to the browser that started it (flow-store.ts keeps its digest). */
const BROWSER_COOKIE = 'tessera_idp_browser';


export function createUpstreamSignInRoutes(deps: UpstreamSignInRouteDependencies): Router {
  const { config, provider, identityProviders, accounts, sessions, audit, callers, secondStep } = deps;
  const startSession = createBrowserSessionStarter({ config, sessions, audit });
  const router = Router();
  const secure = new URL(config.issuer).protocol === 'https:';
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure, path: '/' };
  const facts = (req: Request): RequestFacts => ({ ip: req.ip ?? 'unknown', userAgent: req.get('user-agent') ?? null });

  /** The browser's binding value: the one it has, or a new one set now. */
  function browserBinding(req: Request, res: Response): string {
    const existing = cookieValue(req.headers.cookie, BROWSER_COOKIE);
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const fresh = randomBytes(32).toString('base64url');
    res.cookie(BROWSER_COOKIE, fresh, { ...cookieOptions, maxAge: 3600_000 });
    return fresh;
  }

  function answerFailure(res: Response, next: NextFunction, error: unknown) {
    if (!(error instanceof UpstreamSignInError)) {
      next(error);
      return;
    }
    const { status, page } = failurePage(error.reason, error.provider, error.reason === 'refused' ? error.detail : undefined);
    if (status === 429) res.set('Retry-After', '60');
    sendPage(res, status, page);
  }

  async function start(req: Request, res: Response, next: NextFunction, origin: FlowOrigin) {
    try {
      const url = await identityProviders.begin(String(req.params.id), origin, browserBinding(req, res), facts(req));
      res.redirect(303, url.href);
    } catch (error) {
      answerFailure(res, next, error);
    }
  }

  /**
   * The one place a successful upstream sign-in lands: the OAuth/device interaction resumes with
   * the login (its consent page follows), or a browser session starts as the password /login's.
   * (A second-factor step belongs here, before either.)
   */
  async function completeSignIn(req: Request, res: Response, user: User, origin: Exclude<FlowOrigin, { kind: 'link' }>, providerId: string): Promise<void> {
    // The second step, as after a password: nothing opens before it passes (second-factor-step.ts).
    const need = await secondStep.required(user);
    if (origin.kind === 'interaction') {
      const interaction = await provider.Interaction.find(origin.uid);
      if (!interaction) throw new UpstreamSignInError('expired', identityProviders.client(providerId).provider);
      if (need === 'enrol') {
        sendPage(res, 403, secondFactorEnrolmentNeededPage({ uid: origin.uid }));
        return;
      }
      if (need === 'verify') {
        // The interaction's second-step page ends it with the login only (its consent page follows).
        await secondStep.begin(res, { userId: user.id, via: 'oauth', returnTo: `/interaction/${origin.uid}`, interactionUid: origin.uid, enrol: false, firstFactor: providerId });
        res.redirect(303, `/interaction/${origin.uid}/second-factor`);
        return;
      }
      // What provider.interactionFinished does, by the uid the flow kept: the interaction's own
      // cookie is scoped to /interaction/<uid>, which this callback is not under. The resume
      // endpoint still checks its cookie, so the login lands only in the browser that started it.
      interaction.result = { login: { accountId: user.id } };
      await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
      res.redirect(303, interaction.returnTo);
      return;
    }
    if (need !== 'none') {
      await secondStep.begin(res, { userId: user.id, via: 'browser', returnTo: origin.next, enrol: need === 'enrol', firstFactor: providerId });
      res.redirect(303, need === 'enrol' ? '/login/second-factor/enrol' : '/login/second-factor');
      return;
    }
    await startSession(req, res, user, { provider: providerId });
    res.redirect(303, origin.next);
  }

  router.use(['/login', '/interaction', '/settings/sign-in'], (_req, res, next) => {
    answerOutagesWithPages(res);
    next();
  });

  // Other pages live under /login/ too (the second step, the password reset): a name that is no
  // provider's is theirs, or nobody's (the error handler's 404).
  const isProvider = (id: unknown) => identityProviders.providers().some((candidate) => candidate.id === id);
  router.get('/login/:id', (req, res, next) => (isProvider(req.params.id) ? start(req, res, next, { kind: 'settings', next: localPath(req.query.next) }) : next()));

  // From the OAuth/device sign-in page: the interaction is the browser's own (its cookie says so).
  router.get('/interaction/:uid/login/:id', async (req, res, next) => {
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== req.params.uid) throw new UpstreamSignInError('expired', null);
      await start(req, res, next, { kind: 'interaction', uid: details.uid });
    } catch (error) {
      if (error instanceof UpstreamSignInError || (error as { name?: string }).name !== 'SessionNotFound') {
        answerFailure(res, next, error);
        return;
      }
      sendPage(res, 400, failurePage('expired', null).page);
    }
  });

  router.get('/login/:id/callback', async (req, res, next) => {
    try {
      // The URL as the provider sent it: the registered redirect URI plus the answer's parameters.
      const callbackUrl = new URL(`${config.issuer.replace(/\/$/, '')}${req.originalUrl}`);
      const signedInUserId = async () => (await callers.identify(req))?.user.id ?? null;
      const outcome = await identityProviders.complete(String(req.params.id), callbackUrl, cookieValue(req.headers.cookie, BROWSER_COOKIE), facts(req), signedInUserId);
      if (outcome.kind === 'linked') {
        res.redirect(303, `/settings/sign-in?linked=${encodeURIComponent(outcome.provider.id)}${outcome.already ? '&already=1' : ''}`);
        return;
      }
      await completeSignIn(req, res, outcome.user, outcome.origin, outcome.provider.id);
    } catch (error) {
      answerFailure(res, next, error);
    }
  });

  const page = callers.requireLoginSession('page');
  const viewer = (req: Request) => ({ username: req.caller!.user.username, csrf: callers.csrfFor(req.caller!.sessionId!), admin: req.caller!.scopes.includes('admin') });

  async function renderMethods(req: Request, res: Response, status: number, extra: { notice?: string; error?: string }) {
    const user = req.caller!.user;
    sendPage(res, status, {
      title: 'Sign-in methods',
      body: html`${nav(viewer(req), 'sign-in')}
${signInMethodsBody({ csrf: viewer(req).csrf, links: await identityProviders.listLinks(user.id), providers: identityProviders.providers(), hasPassword: await accounts.hasPassword(user.id), ...extra })}`,
    });
  }

  router.get('/settings/sign-in', page, async (req, res, next) => {
    try {
      const linked = identityProviders.providers().find((p) => p.id === req.query.linked);
      await renderMethods(req, res, 200, linked ? { notice: req.query.already ? `${linked.name} was already linked to your account.` : `${linked.name} is now linked: you can sign in with it.` } : {});
    } catch (error) {
      next(error);
    }
  });

  // A link (GET, so that the provider's page may follow it under form-action 'self') carrying the
  // session's CSRF token: no other site can start linking in someone's session.
  router.get('/settings/sign-in/link/:id', page, async (req, res, next) => {
    if (!callers.csrfMatches(req.caller!.sessionId!, req.query.csrf)) {
      next(new AppError(403, 'csrf', 'The link has expired or did not come from Tessera. Reload the page and try again.'));
      return;
    }
    await start(req, res, next, { kind: 'link', userId: req.caller!.user.id });
  });

  router.post('/settings/sign-in/unlink', page, async (req, res, next) => {
    try {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const { user } = req.caller!;
      try {
        await identityProviders.unlink(user, String(body.provider ?? ''), String(body.subject ?? ''), { actor: `user:${user.id}`, ...facts(req) });
      } catch (error) {
        if (!(error instanceof AppError) || (error.status !== 409 && error.status !== 404)) throw error;
        await renderMethods(req, res, error.status, { error: error.message });
        return;
      }
      const name = identityProviders.providers().find((p) => p.id === body.provider)?.name ?? String(body.provider);
      await renderMethods(req, res, 200, { notice: `${name} is no longer linked to your account.` });
    } catch (error) {
      next(error);
    }
  });

  return router;
}
