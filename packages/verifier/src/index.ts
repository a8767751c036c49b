/**
 * `@tessera/verifier`: what an express API imports to accept Tessera's credentials, introspected
 * (with a small cache) or, for JWT access tokens, verified locally. It imports nothing of the
 * server. Usage: docs/resource-servers.md.
 *
 *   app.get('/api/records', tessera.requireScopes('read'), (req, res) => res.json(req.tessera));
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { presentedCredential, type CredentialHeaderNames, type CredentialSource, type PresentedCredential } from './credentials.ts';
import { bearerChallenge, sendError } from './error-response.ts';
import { createIssuerKeySet, createJwtAccessTokenVerifier, JWT_SHAPE } from './jwt-access-tokens.ts';
import { createSignedAnswerVerifier } from './signed-introspection.ts';
import { createTesseraClient, HEADER_NAME, TesseraUnavailableError, type IntrospectionAnswer } from './tessera-client.ts';
import { createVerificationCache, tokenDigest } from './verification-cache.ts';
import { allowsPath, capabilitiesFor, parseRequestPath, parseScopePath, type CapabilityProfile } from './path-scopes.ts';
import { checkProof, createNonces, createProofReplayCache, dpopChallenge, DpopRefusal } from './dpop.ts';

export { errorBody, sendError, type ErrorBody, type FieldError } from './error-response.ts';
export { allowsPath, capabilitiesFor, parseRequestPath, parseScopePath, pathContains, type CapabilityProfile, type PathResult } from './path-scopes.ts';
export { TesseraUnavailableError } from './tessera-client.ts';
export type { CredentialSource } from './credentials.ts';

/** The kinds of credential an API call may carry (a refresh token never may). */
export type CallerTokenType = 'access_token' | 'personal_access_token' | 'session';

/** Who is calling, and what they may do: `req.tessera` after authentication. */
export interface TesseraPrincipal {
  /** The user's id; for a client-credentials token, the client's id. */
  sub: string;
  /** The user's name; null for a client-credentials token and for JWTs verified locally. */
  username: string | null;
  scopes: string[];
  /** The OAuth client the token was issued to; null for sessions and personal tokens. */
  clientId: string | null;
  tokenType: CallerTokenType;
  /** Seconds since the epoch; null for a personal token without expiry. */
  exp: number | null;
  /** The audiences (RFC 8707 resources) of an OAuth access token; empty for the others. */
  aud: string[];
  /** How it was checked: asked Tessera (possibly answered from the cache) or verified a JWT here. */
  verifiedBy: 'introspection' | 'jwt';
  /** Where the request carried it. */
  source?: CredentialSource;
  /**
   * With `signedIntrospection`: Tessera's signed answer (RFC 9701) this principal rests on, as it
   * was sent (a compact JWT, verified). Keep it as proof of what Tessera said, and when (`iat`);
   * a cached principal carries the answer of the introspection it came from.
   */
  introspectionJwt?: string;
  /** The thumbprint of the key a DPoP-bound token is bound to (its `cnf.jkt`), whose proof came with the request. */
  jkt?: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by the Tessera verifier's middleware once the credential has been accepted. */
    tessera?: TesseraPrincipal;
  }
}

/** Why a credential was not accepted. */
export type RefusalReason = 'inactive' | 'refresh_token' | 'wrong_api_user' | 'audience' | 'expired' | 'dpop_bound' | 'not_dpop_bound' | 'invalid_dpop_proof' | 'use_dpop_nonce';

export type VerificationResult = { active: true; principal: TesseraPrincipal } | { active: false; reason: RefusalReason; description?: string };

/** How a token came (for DPoP-bound tokens, RFC 9449 §7): its scheme, and the request its proof must name. */
export interface DpopPresentation {
  /** `Authorization: DPoP` (with a proof) or a bearer token (any other place). */
  scheme: 'dpop' | 'bearer';
  /** The `DPoP` header's proofs (exactly one is accepted). */
  proofs: string[];
  /** The request's method and absolute URL as the client addressed it. */
  method: string;
  url: string;
}

export interface TesseraVerifierOptions {
  /** Tessera's issuer URL (its ISSUER), e.g. https://auth.example.org. */
  issuer: string;
  /** This API's `resource_server` client (tessera client create --kind resource_server). */
  clientId: string;
  clientSecret: string;
  /** How to authenticate at the introspection endpoint. Default client_secret_basic. */
  clientAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  /**
   * This API's resource identifier(s) (keys of Tessera's oauth.resources). Given, an OAuth access
   * token for another audience is refused, and JWT access tokens are verified locally by default.
   */
  audience?: string | string[];
  /**
   * JWT access tokens: 'local' verifies them against the issuer's JWKS without asking Tessera
   * (a revoked token then passes until it expires; needs `audience`), 'introspect' asks Tessera
   * like any other token. Default: 'local' when `audience` is given, else 'introspect'.
   */
  jwt?: 'local' | 'introspect';
  /**
   * Introspection answers are kept for `ttlSeconds` (default 10), never past the token's `exp`,
   * at most `maxEntries` (default 1000, least recently used go first); `false` turns it off. A
   * revoked credential may pass for up to `ttlSeconds`. Failures to reach Tessera are never kept.
   */
  cache?: { maxEntries?: number; ttlSeconds?: number } | false;
  /**
   * Accept `?access_token=` on plain http (otherwise 400). For development only: a token in a URL
   * ends up in logs and histories, and on plain http on the wire too (RFC 6750 §2.3, §5.3).
   */
  allowQueryTokenOverHttp?: boolean;
  /** The realm of WWW-Authenticate challenges. Default "tessera". */
  realm?: string;
  /**
   * Where the header names below come from: 'options' (the default: these options, or their
   * defaults) or 'discovery': Tessera's discovery document, which publishes the names Tessera
   * itself is configured with, so they are set once, on Tessera. Read with the first request
   * and kept; until Tessera answers, requests get 503 like any other failure to reach it.
   */
  credentialHeaders?: 'options' | 'discovery';
  /** Headers carrying a session token besides X-Session (Tessera's TESSERA_SESSION_HEADER_ALIASES). */
  sessionHeaderAliases?: string[];
  /** The API-key pair (Tessera's TESSERA_API_KEY_HEADER / TESSERA_API_USER_HEADER). Default X-API-Key / X-API-User. */
  apiKeyHeader?: string;
  apiUserHeader?: string;
  /**
   * Ask for signed introspection answers (RFC 9701) and verify each against the issuer's JWKS
   * (`iss`, `aud` this client, `typ`, `iat`): `req.tessera.introspectionJwt` then holds the
   * answer, for an API that must prove what it was told. An answer that does not verify makes the
   * request 503, like any unexpected answer. Default false.
   */
  signedIntrospection?: boolean;
  /** Skip discovery: where to introspect and where the keys are. */
  introspectionEndpoint?: string;
  jwksUri?: string;
  /** How long a request to Tessera may take before the API answers 503. Default 5000 ms. */
  timeoutMs?: number;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch (default Date.now): for expiry and the cache. */
  clock?: () => number;
  /**
   * DPoP-bound tokens (RFC 9449): their proof is checked, and they are refused as bearer tokens.
   * `maxAgeSeconds`: how far a proof's iat may be from now (default 60); `replayCacheSize`: proofs
   * remembered to refuse replays, in this process (default 100 000); `nonces`: ask clients for a
   * nonce of this server (DPoP-Nonce, §9); `requestUrl`: the URL the client addressed (default
   * from express: req.protocol, the Host header and req.originalUrl — set `trust proxy` behind one).
   */
  dpop?: { maxAgeSeconds?: number; replayCacheSize?: number; nonces?: boolean; requestUrl?: (req: Request) => string };
  /** Told why Tessera could not be asked, each time the middleware answers 503 (e.g. to log it). */
  onUnavailable?: (error: TesseraUnavailableError, req: Request) => void;
}

const CALLER_TOKEN_TYPES: readonly string[] = ['access_token', 'personal_access_token', 'session'];
/** Tessera refuses longer credentials without a lookup; so does the verifier. */
const MAX_TOKEN_LENGTH = 4096;

function headerName(option: string, value: string): string {
  if (!HEADER_NAME.test(value)) throw new TypeError(`createTesseraVerifier: ${option} "${value}" is not an HTTP header name`);
  return value.toLowerCase();
}

function integerAtLeast(option: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new TypeError(`createTesseraVerifier: ${option} must be an integer of at least ${min}`);
  return value;
}

/**
 * What an introspection answer grants, before the checks that depend on the request; `ownerEmail`
 * (personal tokens) serves only the API-key pair's check and is not part of the principal.
 */
type Candidate = Omit<TesseraPrincipal, 'tokenType' | 'source'> & { tokenType: string; ownerEmail?: string };

/**
 * Whether the API-key pair's user header names the candidate's owner, as Tessera itself decides:
 * the username or the e-mail address, in any case, or the user id.
 */
function namesOwner(apiUser: string, candidate: Candidate): boolean {
  if (apiUser === '') return false;
  if (apiUser === candidate.sub) return true;
  const named = apiUser.toLowerCase();
  return named === candidate.username?.toLowerCase() || named === candidate.ownerEmail?.toLowerCase();
}

/**
 * The credential's kind: `credential_kind`; a Tessera from before it existed said it in
 * `token_type` (where RFC 7662 wants the OAuth token type, Bearer).
 */
const credentialKind = (answer: IntrospectionAnswer) => answer.credential_kind ?? answer.token_type;

/**
 * The key thumbprint of a DPoP-bound token (RFC 9449 §6: `cnf.jkt`); null for a token bound some
 * other way (RFC 8705 mTLS: no proof of it can be checked here, so never accepted), or a DPoP
 * token without a thumbprint; undefined for a bearer token.
 */
function dpopBinding(cnf: unknown, tokenType: string | undefined, hasKind: boolean): string | null | undefined {
  if (cnf === undefined) return hasKind && tokenType !== undefined && tokenType.toLowerCase() !== 'bearer' ? null : undefined;
  const members = cnf && typeof cnf === 'object' ? Object.keys(cnf) : [];
  const jkt = (cnf as { jkt?: unknown } | null)?.jkt;
  return members.length === 1 && typeof jkt === 'string' && jkt !== '' ? jkt : null;
}

function fromIntrospection(answer: IntrospectionAnswer): Candidate | null {
  const kind = credentialKind(answer);
  const jkt = dpopBinding(answer.cnf, answer.token_type, answer.credential_kind !== undefined);
  if (!answer.active || !answer.sub || !kind || jkt === null) return null;
  return {
    ...(jkt !== undefined ? { jkt } : {}),
    sub: answer.sub,
    username: answer.username ?? null,
    ...(answer.email ? { ownerEmail: answer.email } : {}),
    scopes: (answer.scope ?? '').split(' ').filter(Boolean),
    clientId: answer.client_id ?? null,
    tokenType: kind,
    exp: answer.exp ?? null,
    aud: answer.aud === undefined ? [] : Array.isArray(answer.aud) ? answer.aud : [answer.aud],
    verifiedBy: 'introspection',
  };
}

export function createTesseraVerifier(options: TesseraVerifierOptions) {
  let issuer: string;
  try {
    const url = new URL(options.issuer);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error();
    issuer = options.issuer.replace(/\/+$/, '');
  } catch {
    throw new TypeError(`createTesseraVerifier: issuer "${options.issuer}" is not an http(s) URL`);
  }
  if (!options.clientId || !options.clientSecret) throw new TypeError('createTesseraVerifier: clientId and clientSecret (of a resource_server client) are required');
  const audiences = options.audience === undefined ? [] : [options.audience].flat();
  const jwtMode = options.jwt ?? (audiences.length ? 'local' : 'introspect');
  if (jwtMode === 'local' && !audiences.length) throw new TypeError('createTesseraVerifier: jwt "local" needs `audience` (RFC 9068 §4: a resource server must check that a JWT is meant for it)');
  const cacheOptions = options.cache === false ? { maxEntries: 0, ttlSeconds: 0 } : options.cache ?? {};
  const maxEntries = integerAtLeast('cache.maxEntries', cacheOptions.maxEntries ?? 1000, 0);
  const ttlMs = integerAtLeast('cache.ttlSeconds', cacheOptions.ttlSeconds ?? 10, 0) * 1000;
  const timeoutMs = integerAtLeast('timeoutMs', options.timeoutMs ?? 5000, 1);
  const realm = options.realm ?? 'tessera';
  const clock = options.clock ?? Date.now;
  const fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  const fromDiscovery = options.credentialHeaders === 'discovery';
  if (options.credentialHeaders !== undefined && options.credentialHeaders !== 'options' && !fromDiscovery) {
    throw new TypeError(`createTesseraVerifier: credentialHeaders must be 'options' or 'discovery', not "${String(options.credentialHeaders)}"`);
  }
  if (fromDiscovery && (options.apiKeyHeader !== undefined || options.apiUserHeader !== undefined || options.sessionHeaderAliases !== undefined)) {
    throw new TypeError("createTesseraVerifier: with credentialHeaders: 'discovery' the header names come from Tessera: drop apiKeyHeader, apiUserHeader and sessionHeaderAliases");
  }
  const configuredNames: CredentialHeaderNames | undefined = fromDiscovery
    ? undefined
    : {
        apiKeyHeader: headerName('apiKeyHeader', options.apiKeyHeader ?? 'X-API-Key'),
        apiUserHeader: headerName('apiUserHeader', options.apiUserHeader ?? 'X-API-User'),
        sessionHeaders: ['x-session', ...(options.sessionHeaderAliases ?? []).map((name) => headerName('sessionHeaderAliases', name))],
      };

  const tessera = createTesseraClient({
    issuer,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    clientAuthMethod: options.clientAuthMethod ?? 'client_secret_basic',
    introspectionEndpoint: options.introspectionEndpoint,
    jwksUri: options.jwksUri,
    timeoutMs,
    fetch: fetchImpl,
  });
  const keySet = createIssuerKeySet({ jwksUri: () => tessera.jwksUri(), timeoutMs, fetch: fetchImpl });
  const verifyJwt = createJwtAccessTokenVerifier({ issuer, audiences, keySet, clock });
  const verifySigned = options.signedIntrospection === true ? createSignedAnswerVerifier({ issuer, clientId: options.clientId, keySet, clock }) : undefined;
  const dpopOptions = options.dpop ?? {};
  const proofMaxAgeSeconds = integerAtLeast('dpop.maxAgeSeconds', dpopOptions.maxAgeSeconds ?? 60, 1);
  const proofReplays = createProofReplayCache(integerAtLeast('dpop.replayCacheSize', dpopOptions.replayCacheSize ?? 100_000, 1));
  const nonces = dpopOptions.nonces ? createNonces(proofMaxAgeSeconds) : undefined;
  const requestUrl = dpopOptions.requestUrl ?? ((req: Request) => `${req.protocol}://${req.get('host') ?? ''}${req.originalUrl}`);
  const cache = createVerificationCache<Candidate | null>({ maxEntries: ttlMs > 0 ? maxEntries : 0, clock });
  /** Lookups under way, by token digest: concurrent requests with one token share one introspection. */
  const inFlight = new Map<string, Promise<Candidate | null>>();

  async function introspect(token: string): Promise<Candidate | null> {
    const key = tokenDigest(token);
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const pending = inFlight.get(key);
    if (pending) return pending;
    const lookup = (async () => {
      const { answer, jwt } = await tessera.introspect(token, verifySigned);
      const candidate = fromIntrospection(answer);
      if (candidate && jwt !== undefined) candidate.introspectionJwt = jwt;
      const now = clock();
      const deadline = candidate?.exp != null ? Math.min(now + ttlMs, candidate.exp * 1000) : now + ttlMs;
      cache.set(key, candidate, deadline);
      return candidate;
    })().finally(() => inFlight.delete(key));
    inFlight.set(key, lookup);
    return lookup;
  }

  async function lookUp(token: string): Promise<Candidate | null> {
    if (jwtMode === 'local' && JWT_SHAPE.test(token)) {
      const payload = await verifyJwt(token);
      const jkt = payload ? dpopBinding(payload.cnf, undefined, false) : null;
      if (!payload || jkt === null) return null; // bound some way a proof of cannot be checked: see dpopBinding
      return {
        ...(jkt !== undefined ? { jkt } : {}),
        sub: payload.sub!,
        username: null,
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
        clientId: payload.client_id as string,
        tokenType: 'access_token',
        exp: payload.exp ?? null,
        aud: payload.aud === undefined ? [] : [payload.aud].flat(),
        verifiedBy: 'jwt',
      };
    }
    return introspect(token);
  }

  /**
   * Whether `token` may call this API: active, not a refresh token, not expired (by this clock),
   * meant for this audience, and with the API-key pair (`apiUser` given) a personal token of the
   * user it names (username or e-mail, case-insensitive, or user id). Throws TesseraUnavailableError when
   * Tessera cannot be asked.
   */
  async function verify(token: string, presented: { apiUser?: string; source?: CredentialSource; dpop?: DpopPresentation } = {}): Promise<VerificationResult> {
    if (!token || token.length > MAX_TOKEN_LENGTH) return { active: false, reason: 'inactive' };
    const candidate = await lookUp(token);
    if (!candidate) return { active: false, reason: 'inactive' };
    if (candidate.tokenType === 'refresh_token') return { active: false, reason: 'refresh_token' };
    if (!CALLER_TOKEN_TYPES.includes(candidate.tokenType)) return { active: false, reason: 'inactive' };
    if (candidate.exp !== null && candidate.exp * 1000 <= clock()) return { active: false, reason: 'expired' };
    if (audiences.length && candidate.tokenType === 'access_token' && candidate.aud.length && !candidate.aud.some((aud) => audiences.includes(aud))) {
      return { active: false, reason: 'audience' };
    }
    if (presented.apiUser !== undefined && (candidate.tokenType !== 'personal_access_token' || !namesOwner(presented.apiUser, candidate))) {
      return { active: false, reason: 'wrong_api_user' };
    }
    const scheme = presented.dpop?.scheme ?? 'bearer';
    if (candidate.jkt === undefined && scheme === 'dpop') return { active: false, reason: 'not_dpop_bound' };
    if (candidate.jkt !== undefined) {
      // RFC 9449 §7.1: a bound token only under the DPoP scheme, with a proof of its key for this request.
      if (scheme !== 'dpop' || !presented.dpop) return { active: false, reason: 'dpop_bound' };
      try {
        await checkProof(
          { proofs: presented.dpop.proofs, method: presented.dpop.method, url: presented.dpop.url, accessToken: token, jkt: candidate.jkt },
          { maxAgeSeconds: proofMaxAgeSeconds, replay: proofReplays, nonces, nowMs: clock() },
        );
      } catch (error) {
        if (!(error instanceof DpopRefusal)) throw error;
        return { active: false, reason: error.error, description: error.message };
      }
    }
    const { ownerEmail: _ownerEmail, ...granted } = candidate;
    const principal: TesseraPrincipal = { ...granted, tokenType: candidate.tokenType as CallerTokenType, scopes: [...candidate.scopes], aud: [...candidate.aud] };
    if (presented.source) principal.source = presented.source;
    return { active: true, principal };
  }

  const unauthorized = (res: Response, presented: boolean, message: string) =>
    sendError(res, 401, message, { headers: { 'WWW-Authenticate': presented ? bearerChallenge(realm, { error: 'invalid_token' }) : bearerChallenge(realm) } });

  /** A refusal that concerns DPoP: the DPoP challenge (RFC 9449 §7.1), with a nonce when one is wanted. */
  function refusedDpop(res: Response, reason: RefusalReason, description: string): void {
    const error = reason === 'invalid_dpop_proof' || reason === 'use_dpop_nonce' ? reason : 'invalid_token';
    const headers: Record<string, string> = { 'WWW-Authenticate': dpopChallenge({ error, error_description: description }) };
    if (reason === 'use_dpop_nonce' && nonces) headers['DPoP-Nonce'] = nonces.current(clock());
    sendError(res, 401, description, { headers });
  }

  const REFUSALS: Record<RefusalReason, string> = {
    inactive: 'The credential is invalid, expired or revoked.',
    expired: 'The credential is invalid, expired or revoked.',
    audience: 'The credential is invalid, expired or revoked.',
    wrong_api_user: 'The credential is invalid, expired or revoked.',
    refresh_token: 'A refresh token cannot be used to call an API: send an access token.',
    dpop_bound: 'The token is DPoP-bound: send it with the DPoP scheme and a proof.',
    not_dpop_bound: 'The token is not DPoP-bound: send it as a Bearer token.',
    invalid_dpop_proof: 'The DPoP proof is invalid.',
    use_dpop_nonce: 'The DPoP proof needs a current nonce of this server (DPoP-Nonce).',
  };

  /** 503 for a request whose credential cannot be checked because Tessera cannot be asked. */
  function unavailable(error: unknown, req: Request, res: Response): void {
    if (!(error instanceof TesseraUnavailableError)) throw error;
    options.onUnavailable?.(error, req);
    sendError(res, 503, 'The credential cannot be checked right now: the authorization service is unavailable. Try again later.', { headers: { 'Retry-After': '5' } });
  }

  async function authenticateRequest(req: Request, res: Response): Promise<boolean> {
    if (req.tessera) return true;
    let names: CredentialHeaderNames;
    try {
      names = configuredNames ?? (await tessera.credentialHeaders());
    } catch (error) {
      unavailable(error, req, res);
      return false;
    }
    // `Authorization: DPoP` (RFC 9449 §7.1) before the other places: a DPoP-bound token and its proof.
    const dpopToken = /^dpop\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    const presented: PresentedCredential | undefined = dpopToken ? { token: dpopToken, source: 'authorization' } : presentedCredential(req, names);
    if (!presented) {
      unauthorized(res, false, 'Authentication required.');
      return false;
    }
    if (presented.source === 'query' && req.protocol !== 'https' && !options.allowQueryTokenOverHttp) {
      // RFC 6750 §3.1: a request using a method the server does not accept is invalid_request (400).
      sendError(res, 400, 'An access token in the query string is refused over plain http: send it in the Authorization header.', {
        headers: { 'WWW-Authenticate': bearerChallenge(realm, { error: 'invalid_request', error_description: 'access_token in the query string is refused over plain http' }) },
      });
      return false;
    }
    let result: VerificationResult;
    try {
      const proofs = [req.headers.dpop ?? []].flat().flatMap((value) => value.split(',')).map((value) => value.trim()).filter(Boolean);
      const dpop: DpopPresentation = { scheme: dpopToken ? 'dpop' : 'bearer', proofs, method: req.method, url: requestUrl(req) };
      result = await verify(presented.token, { ...(presented.apiUser !== undefined ? { apiUser: presented.apiUser } : {}), source: presented.source, dpop });
    } catch (error) {
      unavailable(error, req, res);
      return false;
    }
    if (!result.active) {
      if (dpopToken || ['dpop_bound', 'not_dpop_bound', 'invalid_dpop_proof', 'use_dpop_nonce'].includes(result.reason)) refusedDpop(res, result.reason, result.description ?? REFUSALS[result.reason]);
      else unauthorized(res, true, REFUSALS[result.reason]);
      return false;
    }
    // A fresh nonce for the client's next proof (RFC 9449 §9), once the current one ages.
    if (nonces && result.principal.jkt !== undefined) res.setHeader('DPoP-Nonce', nonces.current(clock()));
    // RFC 6750 §5.3: a response to a request with the token in its URL must not be cached by others.
    if (presented.source === 'query') res.setHeader('Cache-Control', 'private');
    req.tessera = result.principal;
    return true;
  }

  function authenticate(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      authenticateRequest(req, res).then((ok) => ok && next(), next);
    };
  }

  /**
   * Authenticates (unless done already), then requires the path-scoped scope `name` to cover the
   * request's path (docs/resource-servers.md#path-scopes): the credential holds `name` itself, or
   * `name:/p` with /p containing the path (/a covers /a/b, never /ab). The path is
   * `options.path(req)`, by default the request's URL path as it arrived (req.originalUrl).
   */
  function requirePathScope(name: string, options: { path?: (req: Request) => string } = {}): RequestHandler {
    if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(name)) throw new TypeError(`requirePathScope: "${name}" is not a scope name`);
    return requireAnyPathScope(() => [name], options.path);
  }

  /**
   * Authenticates, then requires the capability a WLCG or SciTokens token needs for the request's
   * method on its path (capabilitiesFor: GET → storage.read / read, PUT → storage.create or
   * storage.modify / write, DELETE → storage.modify / write).
   */
  function requireCapability(profile: CapabilityProfile, options: { path?: (req: Request) => string } = {}): RequestHandler {
    return requireAnyPathScope((req) => capabilitiesFor(profile, req.method), options.path);
  }

  function requireAnyPathScope(names: (req: Request) => string[], pathOf: (req: Request) => string = (req) => req.originalUrl): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      authenticateRequest(req, res).then((ok) => {
        if (!ok) return;
        const wanted = names(req);
        const path = pathOf(req);
        if (!wanted.some((name) => allowsPath(req.tessera!.scopes, name, path))) {
          const shown = parseRequestPath(path);
          // The challenge names the path only when it is one a scope could carry (no quotes, no spaces).
          const nameable = shown.ok && shown.path !== '/' && parseScopePath(shown.path).ok;
          const scope = wanted.map((name) => (nameable ? `${name}:${(shown as { path: string }).path}` : name)).join(' ');
          sendError(res, 403, `This requires the scope ${wanted.join(' or ')} for ${shown.ok ? shown.path : 'a well-formed path'}.`, {
            headers: { 'WWW-Authenticate': bearerChallenge(realm, { error: 'insufficient_scope', scope }) },
          });
          return;
        }
        next();
      }, next);
    };
  }

  /** Authenticates (unless done already), then requires every scope listed: 403 insufficient_scope otherwise. */
  function requireScopes(...scopes: string[]): RequestHandler {
    for (const scope of scopes) if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)) throw new TypeError(`requireScopes: "${scope}" is not a scope name`);
    return (req: Request, res: Response, next: NextFunction) => {
      authenticateRequest(req, res).then((ok) => {
        if (!ok) return;
        const held = req.tessera!.scopes;
        const missing = scopes.filter((scope) => !held.includes(scope));
        if (missing.length) {
          sendError(res, 403, `This requires the scope ${missing.join(' ')}.`, {
            headers: { 'WWW-Authenticate': bearerChallenge(realm, { error: 'insufficient_scope', scope: scopes.join(' ') }) },
          });
          return;
        }
        next();
      }, next);
    };
  }

  return {
    authenticate,
    requireScopes,
    requirePathScope,
    requireCapability,
    verify,
    /** Forgets every cached answer (e.g. after a credential was revoked here). */
    clearCache(): void {
      cache.clear();
    },
    /** Drops the cache; nothing of the verifier keeps the process alive. */
    close(): void {
      cache.clear();
      proofReplays.clear();
      inFlight.clear();
    },
  };
}

export type TesseraVerifier = ReturnType<typeof createTesseraVerifier>;
