import { sha256Base64url } from '../../shared/sha256.ts';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../../config/schema.ts';
import { FORM_BODY_LIMIT, readBody } from '../../http/raw-http.ts';
import { OAuthError } from '../../shared/errors.ts';
import { rateLimitHeaders } from '../../shared/rate-limit-headers.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { html } from '../../views/html.ts';
import { sendPage } from '../../http/pages.ts';
import { CODE_CHALLENGE } from '../../oauth/device/device-poll-policy.ts';
import { replayRequestBody } from '../../oauth/provider/internals.ts';
import { readScope } from '../../shared/path-scopes.ts';
import { OIDC_ROUTES } from '../../oauth/provider/provider.ts';

// Checks on the device flow's forms (the device authorization request, the user-code page) before
// oidc-provider sees them. oidc-provider reads the body from the request stream itself: it is read
// here, checked (and where the rules say so, amended), then handed on as if it had not been read.

function isForm(req: Request): boolean {
  return (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
}

/**
 * Reads the form body of a POST, lets `check` inspect and amend it, then replays it. `check`
 * answers false when it has answered the request itself, or throws an OAuthError.
 */
function withFormBody(check: (form: URLSearchParams, req: Request, res: Response) => Promise<boolean>): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST' || !isForm(req)) {
      next();
      return;
    }
    try {
      const raw = await readBody(req, FORM_BODY_LIMIT).catch((error: unknown) => {
        throw error instanceof OAuthError ? new OAuthError(error.status, error.error, 'request body too large') : error;
      });
      const form = new URLSearchParams(raw.toString('utf8'));
      const proceed = await check(form, req, res);
      if (!proceed) return;
      replayRequestBody(req, Buffer.from(form.toString()));
      next();
    } catch (error) {
      next(error);
    }
  };
}

/**
 * The device authorization endpoint: `read` when no scope is named, invalid_scope for a scope
 * nobody defined, and the PKCE challenge of a public client (S256 only) kept for the polls.
 */
export function deviceAuthorizationGuard(config: Config): RequestHandler {
  const known = new Set([...Object.keys(config.scopes), 'openid', 'offline_access']);
  const pathScoped = new Set(config.pathScopes);
  return withFormBody(async (form, req) => {
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    const readings = scopes.map((scope) => readScope(scope, pathScoped));
    const invalid = readings.find((reading) => reading.kind === 'invalid');
    if (invalid?.kind === 'invalid') throw new OAuthError(400, 'invalid_scope', invalid.problem);
    const unknown = scopes.filter((scope, i) => !known.has(scope) && readings[i]!.kind !== 'path');
    if (unknown.length) throw new OAuthError(400, 'invalid_scope', `unknown scope: ${unknown.join(' ')}`);
    if (!scopes.some((scope, i) => scope in config.scopes || readings[i]!.kind === 'path')) form.set('scope', [...scopes, 'read'].join(' '));

    const challenge = form.get('code_challenge');
    const method = form.get('code_challenge_method');
    if (challenge !== null || method !== null) {
      if (method !== 'S256') throw new OAuthError(400, 'invalid_request', 'code_challenge_method must be S256');
      if (!challenge || !CODE_CHALLENGE.test(challenge)) throw new OAuthError(400, 'invalid_request', 'code_challenge must be the base64url SHA-256 of the code_verifier');
      (req as unknown as { tesseraCodeChallenge?: string }).tesseraCodeChallenge = challenge;
      form.delete('code_challenge');
      form.delete('code_challenge_method');
    }
    return true;
  });
}

const digest = sha256Base64url;

/**
 * RFC 8628 §5.1: user codes are short, so posting them is rate limited per IP address and per
 * browser session. Every post that names a user code counts (a lookup, a confirmation, an abort):
 * a guess can be posted as any of them.
 */
export function userCodeRateLimit(config: Config, store: EphemeralStore): RequestHandler {
  const hour = 3600_000;
  return withFormBody(async (form, req, res) => {
    const session = /(?:^|;\s*)_session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    // The form's CSRF token is bound to the browser session oidc-provider set when it served the
    // form: without both, the post did not come from that form. (oidc-provider would answer a 500.)
    if (!session || !form.get('xsrf')) {
      sendPage(res, 400, {
        title: 'Form expired',
        body: html`<h1>This form has expired</h1><p class="error" role="alert">Open the verification page again and enter the code shown on your device.</p><p><a href="${OIDC_ROUTES.code_verification}">Enter a code</a></p>`,
      });
      return false;
    }
    if (!form.get('user_code')) return true;
    const checks = [store.increment(`ratelimit:user-code:ip:${req.ip}`, hour).then((r) => ({ ...r, limit: config.oauth.userCodeAttemptsPerIpPerHour }))];
    if (session) {
      checks.push(store.increment(`ratelimit:user-code:session:${digest(session)}`, hour).then((r) => ({ ...r, limit: config.oauth.userCodeAttemptsPerSessionPerHour })));
    }
    const over = (await Promise.all(checks)).filter((r) => r.count > r.limit);
    if (over.length === 0) return true;
    const longest = over.reduce((a, b) => (b.ttlMs > a.ttlMs ? b : a));
    const retryAfter = Math.max(1, Math.ceil(longest.ttlMs / 1000));
    res.set(rateLimitHeaders(longest.limit, retryAfter));
    sendPage(res, 429, {
      title: 'Too many attempts',
      body: html`<h1>Too many attempts</h1><p class="error" role="alert">Too many codes were tried. Wait ${Math.ceil(retryAfter / 60)} minutes, then start again from your device.</p>`,
    });
    return false;
  });
}
