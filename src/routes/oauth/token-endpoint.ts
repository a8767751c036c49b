import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Logger } from 'pino';
import { sendRawError } from '../../http/error-response.ts';
import { FORM_BODY_LIMIT, isFormRequest, isSecureRequest, jsonHeaderList, jsonSecurityHeaders, plainHttpReason, readBody, readyForProvider, requestIdOf, sendJsonText, type RawHandler } from '../../http/raw-http.ts';
import { OAuthError } from '../../shared/errors.ts';
import { CROSS_ORIGIN_HEADERS, type DirectGrant } from '../../oauth/grants/direct-grant.ts';
import { answersPreflight, providerMethodsAt, replayRequestBody } from '../../oauth/provider/internals.ts';
import { oauthNotAllowedError } from '../../http/refusals.ts';
import { OIDC_ROUTES } from '../../oauth/provider/provider.ts';
import { UNUSABLE_ORIGIN } from './oauth-routes.ts';
import type { TokenRequestCheck } from '../../oauth/grants/token-request-rules.ts';

const CROSS_ORIGIN: Record<string, string> = Object.fromEntries(CROSS_ORIGIN_HEADERS.flatMap((name, i) => (i % 2 ? [] : [[name, CROSS_ORIGIN_HEADERS[i + 1]!]])));

/** Who answered a token request: Tessera (a direct grant, or one of its own refusals) or oidc-provider. */
export interface TokenAnswerEvent {
  requestId: string;
  answeredBy: 'tessera' | 'oidc-provider';
  status: number;
  grantType?: string;
}

export interface TokenEndpointDependencies {
  issuer: string;
  logger: Logger;
  provider: Provider;
  /** Tessera's rules before oidc-provider's (oauth/grants/token-request-rules.ts). */
  check: TokenRequestCheck;
  /**
   * Grants issued without oidc-provider's koa stack (client-credentials-grant.ts,
   * refresh-token-grant.ts), tried in turn; each answers null to leave a request to oidc-provider.
   */
  directGrants?: readonly DirectGrant[];
  /** Whether X-Forwarded-* from this peer address are believed (express's compiled trust proxy). */
  trustsProxy: (address: string) => boolean;
  bodyLimit?: number;
  /** Told of every answer, once it is sent (tests use it to see which path answered). */
  onAnswer?: (answer: TokenAnswerEvent) => void;
}

/**
 * POST /oauth/token on node:http ahead of express: the https rule, security headers and request id
 * express would add, Tessera's checks on the form (createTokenRequestCheck), then a direct grant
 * (oauth/grants/) or oidc-provider with the (possibly amended) body. Nothing else of express runs:
 * this is the hottest endpoint. Who answered goes to `onAnswer` and, at debug level, to the log.
 */
export function createTokenEndpoint(deps: TokenEndpointDependencies): RawHandler {
  const callback = deps.provider.callback();
  const httpsRequired = new URL(deps.issuer).protocol === 'https:';
  const securityHeaders = jsonSecurityHeaders(httpsRequired);
  const grantHeaders = [...jsonHeaderList(httpsRequired), ...CROSS_ORIGIN_HEADERS];
  const limit = deps.bodyLimit ?? FORM_BODY_LIMIT;
  const debug = deps.logger.isLevelEnabled('debug');
  const directGrants = deps.directGrants ?? [];
  const { onAnswer } = deps;
  /** What oidc-provider answers here (POST, and a CORS preflight); anything else is 405. */
  const allowed = providerMethodsAt(deps.provider, OIDC_ROUTES.token);
  const preflights = answersPreflight(deps.provider, OIDC_ROUTES.token);
  const isPreflight = (req: IncomingMessage) => preflights && req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
  const answered = (requestId: string, answeredBy: TokenAnswerEvent['answeredBy'], status: number, form: URLSearchParams | undefined) =>
    onAnswer?.({ requestId, answeredBy, status, grantType: form?.get('grant_type') ?? undefined });

  /** The first direct grant's answer, or null when every one leaves the request to oidc-provider. */
  async function directly(form: URLSearchParams, req: IncomingMessage) {
    for (const grant of directGrants) {
      const issued = await grant(form, req.headers);
      if (issued) return issued;
    }
    return null;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    if (httpsRequired && !isSecureRequest(req, deps.trustsProxy)) {
      const detail = plainHttpReason(req, deps.trustsProxy);
      deps.logger.warn({ reqId: requestId, detail }, 'token request refused: HTTPS is required');
      throw new OAuthError(403, 'invalid_request', 'HTTPS is required', { detail });
    }
    let form: URLSearchParams | undefined;
    if (req.method === 'POST' && isFormRequest(req)) {
      const body = await readBody(req, limit);
      form = new URLSearchParams(body.toString('utf8'));
      const outcome = await deps.check(form, req.headers.authorization);
      const issued = directGrants.length > 0 ? await directly(form, req) : null;
      if (issued) {
        sendJsonText(res, 200, JSON.stringify(issued), grantHeaders, requestId);
        if (debug) deps.logger.debug({ reqId: requestId, status: 200, answeredBy: 'tessera' }, 'token request');
        if (onAnswer) answered(requestId, 'tessera', 200, form);
        return;
      }
      replayRequestBody(req, outcome === 'amended' ? Buffer.from(form.toString()) : body);
    } else if (!allowed.includes(req.method ?? '') && !isPreflight(req)) {
      throw oauthNotAllowedError(req.method ?? '', allowed);
    }
    // Anything else (another method, another body) is oidc-provider's to answer.
    if (!readyForProvider(req, deps.trustsProxy)) throw UNUSABLE_ORIGIN;
    for (const [name, value] of Object.entries(securityHeaders)) res.setHeader(name, value);
    res.setHeader('X-Request-Id', requestId);
    await callback(req, res);
    if (debug) deps.logger.debug({ reqId: requestId, status: res.statusCode, answeredBy: 'oidc-provider' }, 'token request');
    if (onAnswer) answered(requestId, 'oidc-provider', res.statusCode, form);
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
      const sent = sendRawError(res, answer, { requestId, logger: deps.logger, headers: securityHeaders, failure: 'token request failed' });
      if (onAnswer) answered(requestId, 'tessera', sent.status, undefined);
    });
  };
}
