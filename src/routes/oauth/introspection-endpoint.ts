import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { sendRawError } from '../../http/error-response.ts';
import { createEndOfTurnSender, isFormRequest, isSecureRequest, jsonHeaderList, jsonSecurityHeaders, plainHttpReason, readBody, requestIdOf, type RawHandler } from '../../http/raw-http.ts';
import type { ActiveCredential, CredentialVerifier, VerifyOptions } from '../../introspection/credential-verifier.ts';
import type { IntrospectionCallers } from '../../introspection/introspection-callers.ts';
import type { FailedLookupLimiter } from '../../introspection/failed-lookup-limiter.ts';
import { INTROSPECTION_JWT_MEDIA_TYPE, type IntrospectionSigner } from '../../introspection/introspection-signer.ts';
import { acceptWeight } from '../../http/media-negotiation.ts';
import { isPromise } from '../../shared/awaitable.ts';
import { OAuthError } from '../../shared/errors.ts';

export interface IntrospectionEndpointDependencies {
  issuer: string;
  logger: Logger;
  callers: IntrospectionCallers;
  /** The (cached) credential verifier: an answer in memory comes at once, not as a promise. */
  verifier: CredentialVerifier;
  /** Whether X-Forwarded-* from this peer address are believed (express's compiled trust proxy). */
  trustsProxy: (address: string) => boolean;
  /** Failed personal-token lookups, per introspecting client. */
  failedLookups: FailedLookupLimiter;
  /** Signs the answers asked for as `application/token-introspection+jwt` (RFC 9701). */
  signer: IntrospectionSigner;
  /** Largest request body accepted, in bytes. */
  bodyLimit?: number;
  /** Told of each answer: the credential's kind when active, null when inactive (the metrics). */
  onAnswered?: (activeKind: string | null) => void;
}

/**
 * The answer for an active credential (RFC 7662 §2.2); nothing internal leaves. `token_type` is the
 * OAuth token type (RFC 6749 §7.1): `DPoP` for a DPoP-bound token, with the key's thumbprint in
 * `cnf.jkt` (RFC 9449 §6.2), `Bearer` for every other credential (a refresh token is presented to
 * no one but the token endpoint, so it has none; a bound one still names its key). Which kind of
 * Tessera credential it is goes in `credential_kind`.
 */
export function introspectionAnswer(active: ActiveCredential, issuer: string): Record<string, unknown> {
  return {
    active: true,
    scope: active.scopes.join(' '),
    ...(active.clientId ? { client_id: active.clientId } : {}),
    ...(active.username ? { username: active.username } : {}),
    ...(active.email ? { email: active.email } : {}),
    sub: active.sub,
    ...(active.kind === 'refresh_token' ? {} : { token_type: active.jkt !== undefined ? 'DPoP' : 'Bearer' }),
    credential_kind: active.kind,
    ...(active.exp !== null ? { exp: active.exp } : {}),
    ...(active.iat !== null ? { iat: active.iat } : {}),
    iss: issuer,
    ...(active.aud ? { aud: active.aud } : {}),
    // RFC 8693 §4.1: who acts for the subject of an exchanged token.
    ...(active.act ? { act: active.act } : {}),
    ...(active.jkt !== undefined ? { cnf: { jkt: active.jkt } } : {}),
  };
}

const INACTIVE = JSON.stringify({ active: false });

/** Cheap enough for every request: only an Accept header naming the signed type is weighed. */
const NAMES_SIGNED_TYPE = /token-introspection\+jwt/i;

/**
 * Whether the caller asks for a signed answer (RFC 9701 §4): an Accept header giving
 * application/token-introspection+jwt a weight above 0 and at least JSON's (the caller named it,
 * so a tie goes to it). Anything else, including no Accept header, gets JSON as before.
 */
export function wantsSignedAnswer(accept: string | undefined): boolean {
  if (accept === undefined || !NAMES_SIGNED_TYPE.test(accept)) return false;
  const signed = acceptWeight(accept, INTROSPECTION_JWT_MEDIA_TYPE);
  return signed > 0 && signed >= acceptWeight(accept, 'application/json');
}

/** Introspection counts refresh tokens; the personal-token audit trail gets no address from here. */
const VERIFY_OPTIONS: VerifyOptions = Object.freeze({ refreshTokens: true, ip: null, senderConstrained: true });

/** What a failure answers: here, what fails is the stores. */
const UNAVAILABLE = new OAuthError(503, 'temporarily_unavailable', 'the token store is unavailable; try again', { headers: { 'Retry-After': '1' } });

async function readForm(req: IncomingMessage, limit: number): Promise<URLSearchParams> {
  if (!isFormRequest(req)) {
    req.resume();
    throw new OAuthError(400, 'invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  return new URLSearchParams((await readBody(req, limit)).toString('utf8'));
}

/** RFC 6749 §3.2: request parameters must not be repeated. */
function assertNoRepeats(params: URLSearchParams) {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) throw new OAuthError(400, 'invalid_request', `'${name}' was sent more than once`);
    seen.add(name);
  }
}

/**
 * RFC 7662 token introspection for every credential Tessera issues, on node:http ahead of express
 * (docs/architecture.md#speed-devices): POST with a form body, over https when the issuer is; the
 * caller authenticated as a resource server (introspection-callers.ts), else 401; then an active
 * answer, or exactly `{"active":false}` (token_type_hint is only a hint: every kind is tried);
 * asked for by Accept, the same answer as a signed JWT (RFC 9701, introspection-signer.ts).
 * Every answer is `Cache-Control: no-store`; successes are logged at debug, refusals at info,
 * failures at error, never with the token.
 */
export function createIntrospectionEndpoint(deps: IntrospectionEndpointDependencies): RawHandler {
  const { issuer, logger, callers, verifier, failedLookups } = deps;
  const limit = deps.bodyLimit ?? 16 * 1024;
  const httpsRequired = new URL(issuer).protocol === 'https:';
  const securityHeaders = jsonSecurityHeaders(httpsRequired);
  const debug = logger.isLevelEnabled('debug');
  const answerHeaders = jsonHeaderList(httpsRequired);
  const signedAnswerHeaders = Object.entries({ ...securityHeaders, 'Content-Type': INTROSPECTION_JWT_MEDIA_TYPE }).flat();
  const sendAtEndOfTurn = createEndOfTurnSender();
  // A cached credential is the same object on every hit: its answer is serialised once.
  const answers = new WeakMap<ActiveCredential, string>();
  const answerText = (active: ActiveCredential) => {
    let text = answers.get(active);
    if (text === undefined) {
      text = JSON.stringify(introspectionAnswer(active, issuer));
      answers.set(active, text);
    }
    return text;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    if (req.method !== 'POST') throw new OAuthError(405, 'invalid_request', 'use POST', { headers: { Allow: 'POST' } });
    if (httpsRequired && !isSecureRequest(req, deps.trustsProxy)) throw new OAuthError(403, 'invalid_request', 'HTTPS is required', { detail: plainHttpReason(req, deps.trustsProxy) });
    const params = await readForm(req, limit);
    assertNoRepeats(params);
    // What memory answers comes at once, not as a promise: nothing to await.
    let caller = callers.authenticate(req.headers.authorization, params);
    if (isPromise(caller)) caller = await caller;
    const token = params.get('token');
    if (!token) throw new OAuthError(400, 'invalid_request', "missing required parameter 'token'");
    // Personal-token guessing (docs/resource-servers.md#limits-on-guessing): the source is the
    // authenticated caller. A limited caller's personal tokens are refused with 429, never answered
    // inactive; its other tokens are answered as ever. A found credential costs one Map read here.
    const waitMs = failedLookups.personalTokenWaitMs(caller.client_id, token);
    if (waitMs > 0) {
      throw new OAuthError(429, 'rate_limited', 'too many personal-token lookups found nothing; try again later', { headers: failedLookups.refusalHeaders(waitMs) });
    }
    let active = verifier.verify(token, VERIFY_OPTIONS);
    if (isPromise(active)) {
      active = await active;
      // Only a lookup in the stores counts (an answer from memory costs nothing).
      if (active === null && failedLookups.personalTokenMissed(caller.client_id, token)) {
        logger.warn({ reqId: requestId, client: caller.client_id }, 'an introspecting client is limited: too many personal-token lookups found nothing');
      }
    }
    const answer = active ? answerText(active) : INACTIVE;
    // RFC 9701: signed per request (the JWT carries its own iat); the JSON path does no more than before.
    const signed = wantsSignedAnswer(req.headers.accept);
    if (signed) sendAtEndOfTurn(res, 200, await deps.signer.sign(caller.client_id, answer), signedAnswerHeaders, requestId);
    else sendAtEndOfTurn(res, 200, answer, answerHeaders, requestId);
    deps.onAnswered?.(active ? active.kind : null);
    if (debug) logger.debug({ reqId: requestId, client: caller.client_id, active: active !== null, signed }, 'introspection');
  }

  return (req, res) => {
    const requestId = requestIdOf(req);
    handle(req, res, requestId).catch((error: unknown) => {
      if (res.headersSent) return;
      const sent = sendRawError(res, error, { requestId, logger, headers: securityHeaders, failure: 'introspection failed', fallback: UNAVAILABLE });
      // (A limited caller's refusals are not logged one by one: its limit was, once.)
      if (sent.status < 500 && sent.status !== 429) logger.info({ reqId: requestId, status: sent.status, reason: sent.message, ...(sent.detail ? { detail: sent.detail } : {}) }, 'introspection request refused');
    });
  };
}
