import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ActiveCredential, CredentialVerifier } from './credential-verifier.ts';
import { CallerRefused, type IntrospectionCallers } from './introspection-callers.ts';

export interface IntrospectionEndpointDependencies {
  issuer: string;
  logger: Logger;
  callers: IntrospectionCallers;
  verifier: CredentialVerifier;
  /** Whether X-Forwarded-* from this peer address are believed (express's compiled trust proxy). */
  trustsProxy: (address: string) => boolean;
  /** Largest request body accepted, in bytes. */
  bodyLimit?: number;
}

/** A handler on node:http itself, placed in front of express (see fast-routes.ts). */
export type RawHandler = (req: IncomingMessage, res: ServerResponse) => void;

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const FORM = /^application\/x-www-form-urlencoded\s*(;|$)/i;

class RequestProblem extends Error {
  readonly status: number;
  readonly error: string;
  constructor(status: number, error: string, description: string) {
    super(description);
    this.status = status;
    this.error = error;
  }
}

/** The answer for an active credential (RFC 7662 §2.2); nothing internal leaves. */
export function introspectionAnswer(active: ActiveCredential, issuer: string): Record<string, unknown> {
  return {
    active: true,
    scope: active.scopes.join(' '),
    ...(active.clientId ? { client_id: active.clientId } : {}),
    ...(active.username ? { username: active.username } : {}),
    sub: active.sub,
    token_type: active.kind,
    ...(active.exp !== null ? { exp: active.exp } : {}),
    ...(active.iat !== null ? { iat: active.iat } : {}),
    iss: issuer,
    ...(active.aud ? { aud: active.aud } : {}),
  };
}

function readForm(req: IncomingMessage, limit: number): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    if (!FORM.test(req.headers['content-type'] ?? '')) {
      req.resume();
      reject(new RequestProblem(400, 'invalid_request', 'the request body must be application/x-www-form-urlencoded'));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(new RequestProblem(413, 'invalid_request', 'the request body is too large'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new RequestProblem(413, 'invalid_request', 'the request body is too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks, size).toString('utf8'))));
    req.on('error', reject);
  });
}

/** RFC 6749 §3.2: request parameters must not be repeated. */
function assertNoRepeats(params: URLSearchParams) {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) throw new RequestProblem(400, 'invalid_request', `'${name}' was sent more than once`);
    seen.add(name);
  }
}

/**
 * RFC 7662 token introspection for every credential Tessera issues, served on node:http ahead of
 * express: the hottest path of every resource server pays for no middleware it does not need
 * (no helmet, no body-parser stack, no oidc-provider koa chain). What it does do:
 *
 * 1. POST with a form body (other methods 405), over https when the issuer is https;
 * 2. authenticate the caller as a resource server (introspection-callers.ts), else 401;
 * 3. answer from the (cached) credential verifier: an active answer, or exactly `{"active":false}`.
 *    token_type_hint is only a hint: every kind is tried.
 *
 * Every answer is `Cache-Control: no-store`. Successful answers are logged at debug level only;
 * refusals at info; failures at error, never with the token.
 */
export function createIntrospectionEndpoint(deps: IntrospectionEndpointDependencies): RawHandler {
  const { issuer, logger, callers, verifier } = deps;
  const limit = deps.bodyLimit ?? 16 * 1024;
  const httpsRequired = new URL(issuer).protocol === 'https:';
  const securityHeaders: Record<string, string> = {
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
    ...(httpsRequired ? { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' } : {}),
  };

  function isSecure(req: IncomingMessage): boolean {
    if ((req.socket as TLSSocket).encrypted) return true;
    const proto = req.headers['x-forwarded-proto'];
    const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
    return first === 'https' && deps.trustsProxy(req.socket.remoteAddress ?? '');
  }

  function send(res: ServerResponse, requestId: string, status: number, body: unknown, extra: Record<string, string> = {}) {
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      ...securityHeaders,
      ...extra,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(payload),
      'X-Request-Id': requestId,
    });
    res.end(payload);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    if (req.method !== 'POST') throw new RequestProblem(405, 'invalid_request', 'use POST');
    if (httpsRequired && !isSecure(req)) throw new RequestProblem(403, 'invalid_request', 'HTTPS is required');
    const params = await readForm(req, limit);
    assertNoRepeats(params);
    const caller = await callers.authenticate(req.headers.authorization, params);
    const token = params.get('token');
    if (!token) throw new RequestProblem(400, 'invalid_request', "missing required parameter 'token'");
    const active = await verifier.verify(token, { refreshTokens: true, ip: null });
    send(res, requestId, 200, active ? introspectionAnswer(active, issuer) : { active: false });
    logger.debug({ reqId: requestId, client: caller.client_id, active: active !== null }, 'introspection');
  }

  return (req, res) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    handle(req, res, requestId).catch((error: unknown) => {
      if (res.headersSent) return;
      if (error instanceof CallerRefused) {
        logger.info({ reqId: requestId, status: error.status, reason: error.message }, 'introspection caller refused');
        send(res, requestId, error.status, { error: error.error, error_description: error.message }, error.basic ? { 'WWW-Authenticate': 'Basic realm="tessera"' } : {});
      } else if (error instanceof RequestProblem) {
        logger.info({ reqId: requestId, status: error.status, reason: error.message }, 'introspection request refused');
        send(res, requestId, error.status, { error: error.error, error_description: error.message }, error.status === 405 ? { Allow: 'POST' } : {});
      } else {
        logger.error({ reqId: requestId, err: error }, 'introspection failed');
        send(res, requestId, 503, { error: 'temporarily_unavailable', error_description: 'the token store is unavailable; try again' }, { 'Retry-After': '1' });
      }
    });
  };
}

/** Serves `routes` (by exact path, query ignored) on node:http itself and everything else with `fallback`. */
export function withFastRoutes(routes: Record<string, RawHandler>, fallback: RawHandler): RawHandler {
  const table = new Map(Object.entries(routes));
  return (req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const handler = table.get(query === -1 ? url : url.slice(0, query));
    if (handler) handler(req, res);
    else fallback(req, res);
  };
}
