import express, { Router, type Request, type Response } from 'express';
import { errors, type default as Provider } from 'oidc-provider';
import type { AccountService } from '../../accounts/account-service.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import type { User } from '../../accounts/user.ts';
import type { Config } from '../../config/schema.ts';
import { HashingBusyError } from '../../accounts/hashing/bounded-hasher.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import { rateLimitHeaders } from '../../shared/rate-limit-headers.ts';
import { html, type SafeHtml } from '../../views/html.ts';
import { sendPage } from '../../http/pages.ts';
import { createCsrf } from '../../http/csrf.ts';
import { answerOutagesWithPages } from '../../http/error-response.ts';
import { storeUnavailableCause } from '../../shared/errors.ts';
import { providerButtons } from '../identity-providers/identity-provider-pages.ts';
import type { SecondFactorStep } from '../second-factor/second-factor-step.ts';
import { secondFactorEnrolmentNeededPage, secondStepAtInteraction } from '../second-factor/interaction-second-step.ts';
import { stepAnswer, tooManyCodes, WRONG_CODE } from '../second-factor/sign-in-step-routes.ts';
import { anyCovers, readScope } from '../../shared/path-scopes.ts';
import { clientScopesOf } from '../../clients/oidc-client-metadata.ts';

// The sign-in and consent page of the issuer (reached from the device flow, and from the
// authorization endpoint for web apps): it asks for username and password when there is no login
// session, shows the client and each requested scope with its description, and approves or denies.

interface Dependencies {
  provider: Provider;
  accounts: AccountService;
  config: Config;
  signIn: PasswordSignIn;
  csrfKey: string;
  audit: Pick<AuditLog, 'recordInBackground'>;
  /** The second step after the password (routes/second-factor/second-factor-step.ts). */
  secondStep: SecondFactorStep;
}

interface InteractionView {
  uid: string;
  clientName: string;
  requested: string[];
  /** The scopes the client may have (path scopes among them): what it lacks is not granted either. */
  clientScopes: string[];
  user: User | null;
  error?: string;
  username?: string;
}

const PROTOCOL_SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are (your account id and username).',
  offline_access: 'Stay signed in: keep access after this session ends, until you revoke it.',
};

export function createInteractionRoutes({ provider, accounts, config, signIn, csrfKey, audit, secondStep }: Dependencies): Router {
  const router = Router();
  const csrf = createCsrf(csrfKey);
  const pathScoped = new Set(config.pathScopes);
  /** A catalog scope, or a path scope of a path-scoped name ("deposit:write:/records/123"). */
  const isApiScope = (scope: string) => scope in config.scopes || readScope(scope, pathScoped).kind === 'path';
  const describe = (scope: string) => {
    const reading = readScope(scope, pathScoped);
    if (reading.kind === 'path' && reading.scope.path !== '/') return `${config.scopes[reading.scope.base] ?? reading.scope.base} Only under ${reading.scope.path}.`;
    return config.scopes[scope] ?? PROTOCOL_SCOPE_TEXT[scope] ?? scope;
  };

  /**
   * The decision on a device login (device.approved, device.denied) or a web app's authorization
   * request (authorization.approved, .denied). A denial needs no sign-in: without a user it is
   * anyone's to cause, and written within the untrusted budget.
   */
  function recordDecision(req: Request, details: Awaited<ReturnType<typeof provider.interactionDetails>>, user: User | null, outcome: 'approved' | 'denied', facts: Record<string, unknown>) {
    const clientId = String(details.params.client_id);
    // A device login's interaction carries its device code (a secret: only its presence is used).
    const flow = (details as { deviceCode?: unknown }).deviceCode ? 'device' : 'authorization';
    audit.recordInBackground(
      {
        actor: user ? `user:${user.id}` : `ip:${req.ip ?? 'unknown'}`,
        action: `${flow}.${outcome}`,
        subject: user ? `user:${user.id}` : `client:${clientId}`,
        ip: req.ip ?? null,
        userAgent: req.get('user-agent') ?? null,
        details: { clientId, ...(user ? { userId: user.id } : {}), ...facts },
      },
      { untrusted: !user },
    );
  }

  function render(res: Response, view: InteractionView, status = 200) {
    // As approve() grants: a scope both the account (for protocol scopes: anyone) and the client hold.
    const grantable = view.user ? [...view.user.allowedScopes, 'openid', 'offline_access'] : view.requested;
    const scopeList = view.requested.map((scope) => {
      const why = !anyCovers(grantable, scope, pathScoped) ? 'your account may not have it' : !anyCovers(view.clientScopes, scope, pathScoped) ? 'this application may not have it' : null;
      return why === null
        ? html`<li><code>${scope}</code><br><span class="muted">${describe(scope)}</span></li>`
        : html`<li class="withheld"><code>${scope}</code><br><span class="muted">${describe(scope)} Not granted: ${why}.</span></li>`;
    });
    const login: SafeHtml = view.user
      ? html`<p class="muted">Signed in as <strong>${view.user.username}</strong>.</p>`
      : html`<label for="username">Username or e-mail</label>
<input id="username" name="username" type="text" autocomplete="username" required autofocus value="${view.username ?? ''}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>`;
    sendPage(res, status, {
      title: 'Authorize access',
      body: html`<h1>Authorize ${view.clientName}</h1>
${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
<p><strong>${view.clientName}</strong> asks for access to your account:</p>
<ul class="scopes">${scopeList}</ul>
<form method="post" action="/interaction/${view.uid}">
<input type="hidden" name="csrf" value="${csrf.tokenFor('interaction', view.uid)}">
${login}
<div class="actions">
  <button type="submit" name="decision" value="approve">Approve</button>
  <button type="submit" name="decision" value="deny" class="secondary" formnovalidate>Deny</button>
</div>
</form>
${view.user ? '' : providerButtons(config.identityProviders, (provider) => `/interaction/${view.uid}/login/${provider.id}`)}`,
    });
  }

  async function load(req: Request, res: Response) {
    const details = await provider.interactionDetails(req, res);
    // The interaction comes from the browser's cookie; a URL naming another one is stale.
    if (req.params.uid !== details.uid) throw new errors.SessionNotFound('interaction not found');
    const clientId = String(details.params.client_id);
    const client = await provider.Client.find(clientId);
    const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
    const accountId = details.session?.accountId;
    const user = accountId ? await accounts.findUserById(accountId) : null;
    const clientScopes = clientScopesOf(client as { scope?: unknown; tessera_path_scopes?: unknown } | undefined);
    return { details, client, clientName: client?.clientName ?? clientId, requested, clientScopes, user: user && !user.disabled ? user : null };
  }

  /**
   * An expired or unknown interaction (or one from another browser) ends in a page, not a 500;
   * anything else (a store outage among them) is the error handler's, which answers a page here.
   */
  function failed(res: Response, next: (error: unknown) => void, error: unknown) {
    if (!(error instanceof errors.OIDCProviderError) || storeUnavailableCause(error)) {
      next(error);
      return;
    }
    sendPage(res, error.statusCode ?? 400, {
      title: 'Sign-in expired',
      body: html`<h1>This sign-in has expired</h1><p class="error" role="alert">The page is no longer valid (it may have timed out or been opened in another browser). Start again from your device or application.</p>`,
    });
  }

  router.use('/interaction', (_req, res, next) => {
    answerOutagesWithPages(res);
    next();
  });

  router.get('/interaction/:uid', async (req, res, next) => {
    try {
      const { details, clientName, requested, clientScopes, user } = await load(req, res);
      render(res, { uid: details.uid, clientName, requested, clientScopes, user });
    } catch (error) {
      failed(res, next, error);
    }
  });

  router.post('/interaction/:uid', express.urlencoded({ extended: false, limit: '10kb' }), async (req, res, next) => {
    try {
      const { details, client, clientName, requested, clientScopes, user: sessionUser } = await load(req, res);
      const body = (req.body ?? {}) as Record<string, string | undefined>;
      if (!csrf.verify('interaction', details.uid, body.csrf)) {
        render(res, { uid: details.uid, clientName, requested, clientScopes, user: sessionUser, error: 'The form expired. Please try again.' }, 403);
        return;
      }
      if (body.decision !== 'approve') {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user denied the request.' }, { mergeWithLastSubmission: false });
        recordDecision(req, details, sessionUser, 'denied', { requested, reason: 'user_denied' });
        return;
      }

      let user = sessionUser;
      if (!user) {
        const username = body.username ?? '';
        let result;
        try {
          result = await signIn.attempt(username, body.password ?? '', { ip: req.ip ?? 'unknown', userAgent: req.get('user-agent') ?? null, via: 'oauth' });
        } catch (error) {
          if (!(error instanceof HashingBusyError)) throw error;
          res.set('Retry-After', '1');
          render(res, { uid: details.uid, clientName, requested, clientScopes, user: null, username, error: 'The service is busy. Try again in a moment.' }, 503);
          return;
        }
        if (result.status === 'limited') {
          res.set(rateLimitHeaders(result.limit, result.retryAfterSeconds));
          render(res, { uid: details.uid, clientName, requested, clientScopes, user: null, username, error: `Too many sign-in attempts. Try again in ${Math.ceil(result.retryAfterSeconds / 60)} minutes.` }, 429);
          return;
        }
        if (result.status === 'failed') {
          render(res, { uid: details.uid, clientName, requested, clientScopes, user: null, username, error: 'Wrong username or password.' }, 401);
          return;
        }
        user = result.user;
        // An account with a second factor approves only once that step has passed (POST …/second-factor).
        const need = await secondStep.required(user);
        if (need === 'enrol') {
          sendPage(res, 403, secondFactorEnrolmentNeededPage(view(details.uid)));
          return;
        }
        if (need === 'verify') {
          await secondStep.begin(res, { userId: user.id, via: 'oauth', returnTo: `/interaction/${details.uid}`, interactionUid: details.uid, enrol: false, firstFactor: 'password' });
          res.redirect(303, `/interaction/${details.uid}/second-factor`);
          return;
        }
      }
      await approve(req, res, details, client, requested, user);
    } catch (error) {
      failed(res, next, error);
    }
  });

  // The second step of the sign-in above: a code, recovery code or passkey for the pending sign-in
  // this browser began on this interaction; the approval follows only when it passes.
  async function secondStepPage(req: Request, res: Response, uid: string, status: number, error?: string) {
    const pending = await secondStep.pending(req, uid);
    if (!pending) return false;
    const username = (await accounts.findUserById(pending.userId))?.username ?? '';
    const passkeyOptions = await secondStep.passkeyOptions(req, pending);
    sendPage(res, status, secondStepAtInteraction({ uid, csrf: csrf.tokenFor('interaction', uid), username, passkeyOptions, ...(error ? { error } : {}) }));
    return true;
  }

  router.get('/interaction/:uid/second-factor', async (req, res, next) => {
    try {
      const { details } = await load(req, res);
      if (!(await secondStepPage(req, res, details.uid, 200))) res.redirect(303, `/interaction/${details.uid}`);
    } catch (error) {
      failed(res, next, error);
    }
  });

  router.post('/interaction/:uid/second-factor', express.urlencoded({ extended: false, limit: '10kb' }), async (req, res, next) => {
    try {
      const { details, client, requested, clientScopes } = await load(req, res);
      const body = (req.body ?? {}) as Record<string, string | undefined>;
      const again = async (status: number, error: string) => {
        if (!(await secondStepPage(req, res, details.uid, status, error))) res.redirect(303, `/interaction/${details.uid}`);
      };
      if (!csrf.verify('interaction', details.uid, body.csrf)) {
        await again(403, 'The form expired. Please try again.');
        return;
      }
      const result = await secondStep.attempt(req, res, stepAnswer(body), details.uid);
      if (result.status === 'expired') {
        const { clientName } = await load(req, res);
        render(res, { uid: details.uid, clientName, requested, clientScopes, user: null, error: 'The sign-in took too long. Sign in again.' }, 401);
        return;
      }
      if (result.status === 'limited') {
        res.set(rateLimitHeaders(result.limit, result.retryAfterSeconds));
        await again(429, tooManyCodes(result.retryAfterSeconds));
        return;
      }
      if (result.status === 'failed') {
        await again(401, WRONG_CODE);
        return;
      }
      if (result.pending.firstFactor !== 'password') {
        // The first step was an identity provider's, not this page's Approve: sign in, then the consent page.
        await provider.interactionFinished(req, res, { login: { accountId: result.user.id } }, { mergeWithLastSubmission: false });
        return;
      }
      await approve(req, res, details, client, requested, result.user);
    } catch (error) {
      failed(res, next, error);
    }
  });

  /** The interaction's page, for pages of the second step that lead back to it. */
  function view(uid: string) {
    return { uid, csrf: csrf.tokenFor('interaction', uid) };
  }

  /** Records the consent (what was asked, narrowed to what the user and the client may have) and ends the interaction. */
  async function approve(req: Request, res: Response, details: Awaited<ReturnType<typeof provider.interactionDetails>>, client: Awaited<ReturnType<typeof load>>['client'], requested: string[], user: User) {
    // (The block is the body the POST route had before the second step moved it here, unchanged.)
    {
      // Grant what was asked, narrowed to what the user and the client may have.
      // A path scope is granted when a scope the user holds and one the client may have both cover it.
      const clientScopes = clientScopesOf(client as { scope?: unknown; tessera_path_scopes?: unknown } | undefined);
      const apiScopes = requested.filter((scope) => isApiScope(scope) && anyCovers(user.allowedScopes, scope, pathScoped) && anyCovers(clientScopes, scope, pathScoped));
      // (oidc-provider refuses protocol scopes a client's `scope` omits, but a client with path
      // scopes only has no `scope` for it to read: the client's own list decides here too.)
      const protocolScopes = requested.filter((scope) => (scope === 'openid' || scope === 'offline_access') && clientScopes.includes(scope));
      if (apiScopes.length === 0) {
        await provider.interactionFinished(
          req,
          res,
          { error: 'access_denied', error_description: 'None of the requested scopes may be granted to this account.' },
          { mergeWithLastSubmission: false },
        );
        recordDecision(req, details, user, 'denied', { requested, reason: 'no_grantable_scope' });
        return;
      }
      const grant = details.grantId
        ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId: user.id, clientId: String(details.params.client_id) }))
        : new provider.Grant({ accountId: user.id, clientId: String(details.params.client_id) });
      // oidc-provider knows every scope, so the consent covers them as its own scopes as well as
      // the resource server's (from which the access token takes its scope).
      grant.addOIDCScope([...protocolScopes, ...apiScopes].join(' '));
      const resource = typeof details.params.resource === 'string' ? details.params.resource : ((client as unknown as { tessera_default_resource?: string })?.tessera_default_resource ?? config.oauth.defaultResource);
      grant.addResourceScope(resource, apiScopes.join(' '));
      // What was asked but may not be granted is recorded as refused, so the consent is complete.
      const withheld = requested.filter((scope) => isApiScope(scope) && !apiScopes.includes(scope));
      if (withheld.length) {
        grant.rejectOIDCScope(withheld.join(' '));
        grant.rejectResourceScope(resource, withheld.join(' '));
      }
      const withheldProtocol = requested.filter((scope) => (scope === 'openid' || scope === 'offline_access') && !protocolScopes.includes(scope));
      if (withheldProtocol.length) grant.rejectOIDCScope(withheldProtocol.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId: user.id }, consent: { grantId } }, { mergeWithLastSubmission: false });
      recordDecision(req, details, user, 'approved', { grantId, scopes: [...protocolScopes, ...apiScopes], ...(withheld.length ? { withheld } : {}), resource });
    }
  }

  return router;
}
