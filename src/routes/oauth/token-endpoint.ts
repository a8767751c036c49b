import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Logger } from 'pino';
import { sendRawError } from '../../http/error-response.ts';
import { FORM_BODY_LIMIT, isFormRequest, isSecureRequest, jsonHeaderList, jsonSecurityHeaders, readBody, requestIdOf, sendJsonText, type RawHandler } from '../../http/raw-http.ts';
import { OAuthError } from '../../shared/errors.ts';
import { CROSS_ORIGIN_HEADERS, type DirectGrant } from '../../oauth/grants/direct-grant.ts';
import { replayRequestBody } from '../../oauth/provider/internals.ts';
import type { TokenRequestCheck } from './oauth-request-guard.ts';

const CROSS_ORIGIN: Record<string, string> = Object.fromEntries(CROSS_ORIGIN_HEADERS.flatMap((name, i) => (i % 2 ? [] : [[name, CROSS_ORIGIN_HEADERS[i + 1]!]])));

export interface TokenEndpointDependencies {
  issuer: string;
  logger: Logger;
  provider: Provider;
  /** Tessera's rules before oidc-provider's (oauth-request-guard.ts). */
  check: TokenRequestCheck;
  /**
   * Grants issued without oidc-provider's koa stack (client-credentials-grant.ts,
   * refresh-token-grant.ts), tried in turn; each answers null to leave a request to oidc-provider.
   */
  directGrants?: readonly DirectGrant[];
  /** Whether X-Forwarded-* from this peer address are believed (express's compiled trust proxy). */
  trustsProxy: (address: string) => boolean;
  bodyLimit?: number;
}

/**
 * POST /oauth/token on node:http ahead of express: the https rule, the security headers and the
 * request id that express's middleware would add, Tessera's checks on the form
 * (createTokenRequestCheck), then oidc-provider itself with the (possibly amended) body, except
 * for the requests a direct grant issues (client credentials, refresh: direct-grant.ts). Nothing
 * else of express runs: what Tessera adds must cost nothing on the token endpoint. Answers are
 * logged at debug level only (with `answeredBy`: tessera or oidc-provider); failures at error (by
 * oidc-provider's server_error listener).
 */
export function createTokenEndpoint(deps: TokenEndpointDependencies): RawHandler {
  const callback = deps.provider.callback();
  const httpsRequired = new URL(deps.issuer).protocol === 'https:';
  const securityHeaders = jsonSecurityHeaders(httpsRequired);
  const grantHeaders = [...jsonHeaderList(httpsRequired), ...CROSS_ORIGIN_HEADERS];
  const limit = deps.bodyLimit ?? FORM_BODY_LIMIT;
  const debug = deps.logger.isLevelEnabled('debug');
  const directGrants = deps.directGrants ?? [];

  /** The first direct grant's answer, or null when every one leaves the request to oidc-provider. */
  async function directly(form: URLSearchParams, req: IncomingMessage) {
    for (const grant of directGrants) {
      const issued = await grant(form, req.headers);
      if (issued) return issued;
    }
    return null;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    if (httpsRequired && !isSecureRequest(req, deps.trustsProxy)) throw new OAuthError(403, 'invalid_request', 'HTTPS is required');
    if (req.method === 'POST' && isFormRequest(req)) {
      const body = await readBody(req, limit);
      const form = new URLSearchParams(body.toString('utf8'));
      const outcome = await deps.check(form, req.headers.authorization);
      const issued = await directly(form, req);
      if (issued) {
        sendJsonText(res, 200, JSON.stringify(issued), grantHeaders, requestId);
        if (debug) deps.logger.debug({ reqId: requestId, status: 200, answeredBy: 'tessera' }, 'token request');
        return;
      }
      replayRequestBody(req, outcome === 'amended' ? Buffer.from(form.toString()) : body);
    }
    // Anything else (another method, another body) is oidc-provider's to answer.
    for (const [name, value] of Object.entries(securityHeaders)) res.setHeader(name, value);
    res.setHeader('X-Request-Id', requestId);
    await callback(req, res);
    if (debug) deps.logger.debug({ reqId: requestId, status: res.statusCode, answeredBy: 'oidc-provider' }, 'token request');
  }

  return (req, res) => {
    const requestId = requestIdOf(req);
    handle(req, res, requestId).catch((error: unknown) => {
      if (res.headersSent) return;
      let answer = error;
      if (error instanceof errors.OIDCProviderError && error.status < 500) {
        // A direct grant's refusal after it began (a concurrent refresh consumed the token first):
        // as oidc-provider answers it, with the detail for the log only.
        if (debug) deps.logger.debug({ reqId: requestId, status: error.status, error: error.error, detail: error.error_detail, answeredBy: 'tessera' }, 'token request');
        answer = new OAuthError(error.status, error.error, error.error_description ?? '', { detail: error.error_detail, headers: CROSS_ORIGIN });
      }
      sendRawError(res, answer, { requestId, logger: deps.logger, headers: securityHeaders, failure: 'token request failed' });
    });
  };
}
