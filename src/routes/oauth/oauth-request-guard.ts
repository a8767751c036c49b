import { sha256Base64url } from '../../shared/sha256.ts';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../../config/schema.ts';
import { formDecode, parseBasicAuthorization } from '../../credentials/basic-auth.ts';
import { FORM_BODY_LIMIT, readBody } from '../../http/raw-http.ts';
import { OAuthError } from '../../shared/errors.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { html } from '../../views/html.ts';
import { sendPage } from '../../http/pages.ts';
import { CODE_CHALLENGE, CODE_VERIFIER, type DevicePollPolicy } from '../../oauth/device/device-poll-policy.ts';
import { replayRequestBody } from '../../oauth/provider/internals.ts';
import { OIDC_ROUTES } from '../../oauth/provider/provider.ts';

// Checks that run on OAuth requests before oidc-provider sees them. They need the form body, which
// oidc-provider reads from the request stream itself: the body is read here, checked (and where
// the rules say so, amended), then handed on as if it had not been read.

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
  return withFormBody(async (form, req) => {
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    const unknown = scopes.filter((scope) => !known.has(scope));
    if (unknown.length) throw new OAuthError(400, 'invalid_scope', `unknown scope: ${unknown.join(' ')}`);
    if (!scopes.some((scope) => scope in config.scopes)) form.set('scope', [...scopes, 'read'].join(' '));

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

/** What the token endpoint's rules read. */
export interface TokenGuardDependencies {
  devicePolls: DevicePollPolicy;
  /** The scopes a client may obtain. */
  clientScopes(clientId: string): Promise<string[]>;
  /**
   * For a refresh token: the scopes its user may still be granted today, or null when the token is
   * unknown (oidc-provider then answers invalid_grant itself).
   */
  refreshTokenUserScopes(refreshToken: string): Promise<{ granted: string[]; allowed: string[] } | null>;
}

/**
 * The token endpoint's rules beyond oidc-provider's: device polls (slow_down, PKCE), refresh
 * narrowed to what the user may still have, client credentials narrowed to the client's scopes
 * (`read` when none is named; never offline_access or openid: no refresh tokens, no users).
 * A refusal is thrown (an OAuthError); null lets the request go on to oidc-provider as it came,
 * 'amended' with `form` as the check changed it.
 */
export type TokenRequestCheck = (form: URLSearchParams, authorization: string | undefined) => Promise<'amended' | null>;

export function createTokenRequestCheck({ devicePolls, clientScopes, refreshTokenUserScopes }: TokenGuardDependencies): TokenRequestCheck {
  return async (form, authorization) => {
    const grantType = form.get('grant_type');
    if (grantType === 'urn:ietf:params:oauth:grant-type:device_code') {
      const deviceCode = form.get('device_code');
      if (!deviceCode) return null; // oidc-provider answers the missing parameter.
      const verifier = form.get('code_verifier') ?? undefined;
      if (verifier !== undefined && !CODE_VERIFIER.test(verifier)) {
        throw new OAuthError(400, 'invalid_request', 'code_verifier must be 43-128 characters of [A-Za-z0-9-._~]');
      }
      if ((await devicePolls.poll(deviceCode)) === 'slow_down') {
        throw new OAuthError(400, 'slow_down', 'polling too frequently; wait longer between requests');
      }
      const pkce = await devicePolls.verifyPkce(deviceCode, verifier);
      if (pkce !== 'ok') {
        const description = {
          missing_verifier: 'code_verifier required: a code_challenge was sent with this device code',
          mismatch: 'PKCE verification failed',
          unexpected_verifier: 'code_verifier sent, but no code_challenge was sent with this device code',
        }[pkce];
        throw new OAuthError(400, 'invalid_grant', description);
      }
      if (verifier === undefined) return null;
      form.delete('code_verifier');
      return 'amended';
    }
    if (grantType === 'refresh_token' && form.get('refresh_token')) {
      // The user's allowed scopes may have shrunk since the grant: a refresh never gives more
      // than they may have now.
      const scopes = await refreshTokenUserScopes(form.get('refresh_token')!);
      if (scopes) {
        const requested = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const wanted = requested.length ? requested : scopes.granted;
        // Scopes beyond the token's are left in: oidc-provider answers those with invalid_scope.
        const kept = wanted.filter((scope) => scopes.allowed.includes(scope) || !scopes.granted.includes(scope));
        if (kept.length < wanted.length) {
          if (!kept.some((scope) => scope !== 'openid' && scope !== 'offline_access')) {
            throw new OAuthError(400, 'invalid_grant', 'the account may no longer be granted any of these scopes');
          }
          form.set('scope', kept.join(' '));
          return 'amended';
        }
      }
      return null;
    }
    if (grantType === 'client_credentials') {
      // Narrowing only: the client is authenticated afterwards by oidc-provider.
      const clientId = basicClientId(authorization) ?? form.get('client_id');
      const allowed = new Set(clientId ? await clientScopes(clientId) : []);
      const requested = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const scopes = (requested.length ? requested : ['read']).filter((scope) => allowed.has(scope) && scope !== 'offline_access' && scope !== 'openid');
      if (scopes.length === 0 && clientId && allowed.size > 0) {
        // Dropping every scope would give a token good for nothing: say so instead.
        throw new OAuthError(400, 'invalid_scope', 'none of the requested scopes may be granted to this client');
      }
      const scope = scopes.length ? scopes.join(' ') : null;
      if (scope === form.get('scope')) return null;
      if (scope) form.set('scope', scope);
      else form.delete('scope');
      return 'amended';
    }
    return null;
  };
}

function basicClientId(header: string | undefined): string | undefined {
  const credentials = parseBasicAuthorization(header);
  return credentials && (formDecode(credentials.id) ?? credentials.id);
}

const digest = sha256Base64url;

/**
 * RFC 8628 §5.1: user codes are short, so entering them is rate limited per IP address and per
 * browser session. Only code lookups count, not the confirmation step.
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
    if (!form.get('user_code') || form.get('confirm') || form.get('abort')) return true;
    const checks = [store.increment(`ratelimit:user-code:ip:${req.ip}`, hour).then((r) => ({ ...r, limit: config.oauth.userCodeAttemptsPerIpPerHour }))];
    if (session) {
      checks.push(store.increment(`ratelimit:user-code:session:${digest(session)}`, hour).then((r) => ({ ...r, limit: config.oauth.userCodeAttemptsPerSessionPerHour })));
    }
    const over = (await Promise.all(checks)).filter((r) => r.count > r.limit);
    if (over.length === 0) return true;
    const retryAfter = Math.ceil(Math.max(...over.map((r) => r.ttlMs)) / 1000);
    res.set('Retry-After', String(retryAfter));
    sendPage(res, 429, {
      title: 'Too many attempts',
      body: html`<h1>Too many attempts</h1><p class="error" role="alert">Too many codes were tried. Wait ${Math.ceil(retryAfter / 60)} minutes, then start again from your device.</p>`,
    });
    return false;
  });
}

export const OAUTH_FORM_ROUTES = { device: OIDC_ROUTES.device_authorization, token: OIDC_ROUTES.token, verification: OIDC_ROUTES.code_verification };
