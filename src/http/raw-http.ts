import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { OAuthError } from '../shared/errors.ts';
import { createTurnQueue } from '../shared/turn-batches.ts';

// The few things the hot endpoints (introspection, token) need from HTTP, on node:http itself:
// express and its middleware cost more than the work those endpoints do
// (docs/architecture.md#nodehttp-ahead-of-express).

/** A handler on node:http itself, placed in front of express by withFastRoutes. */
export type RawHandler = (req: IncomingMessage, res: ServerResponse) => void;

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

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const FORM = /^application\/x-www-form-urlencoded\s*(;|$)/i;

/** The caller's X-Request-Id when it looks sane, otherwise a new UUID (as express's requestContext does). */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** Whether the request came over TLS, directly or (from a trusted proxy) per X-Forwarded-Proto. */
export function isSecureRequest(req: IncomingMessage, trustsProxy: (address: string) => boolean): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  const proto = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https' && trustsProxy(req.socket.remoteAddress ?? '');
}

/**
 * Why isSecureRequest said no, for the log (never for the client): what came in, from where, and
 * what would make it pass. Holds no credential: the peer's address and the forwarded scheme only.
 */
export function plainHttpReason(req: IncomingMessage, trustsProxy: (address: string) => boolean): string {
  const peer = req.socket.remoteAddress ?? 'an unknown address';
  const proto = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  const base = `the issuer is https but this request came over plain http from ${peer}`;
  if (!first) return `${base} without X-Forwarded-Proto: a TLS-terminating proxy or gateway must send X-Forwarded-Proto (nginx: proxy_set_header X-Forwarded-Proto $scheme)`;
  const scheme = /^[a-z]{1,10}$/.test(first) ? first : 'an unreadable value';
  if (scheme !== 'https') return `${base} with X-Forwarded-Proto ${scheme}: the client reached the proxy without TLS`;
  if (!trustsProxy(req.socket.remoteAddress ?? '')) return `${base} with X-Forwarded-Proto https, but ${peer} is not a trusted proxy: add it to TESSERA_TRUST_PROXY (http.trustProxy)`;
  return base;
}

/** The headers through which a proxy names the request's origin and client. */
const FORWARDING_HEADERS = ['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-for'];

const firstValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim();

/**
 * Readies a request for oidc-provider, which (koa with `proxy` on) believes X-Forwarded-* from any
 * peer and builds its URLs from the origin they name: forwarding headers from a peer that is not a
 * trusted proxy are removed (express ignores them too), and the answer says whether the origin
 * oidc-provider will build from is an http(s) URL at all (a Host of `:` or an X-Forwarded-Proto of
 * `a:` is not, and would fail as a 500).
 */
export function readyForProvider(req: IncomingMessage, trustsProxy: (address: string) => boolean): boolean {
  if (!trustsProxy(req.socket.remoteAddress ?? '')) for (const name of FORWARDING_HEADERS) delete req.headers[name];
  // As koa reads them: a forwarded header present at all wins, even when its first value is empty.
  const protocol = req.headers['x-forwarded-proto'] ? firstValue(req.headers['x-forwarded-proto']) : (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  const host = req.headers['x-forwarded-host'] ? firstValue(req.headers['x-forwarded-host']) : firstValue(req.headers.host);
  return /^https?$/i.test(protocol ?? '') && !!host && URL.canParse(`${protocol}://${host}/`);
}

export function isFormRequest(req: IncomingMessage): boolean {
  return FORM.test(req.headers['content-type'] ?? '');
}

/** oidc-provider's own limit for form bodies, which the endpoints that read a form first keep. */
export const FORM_BODY_LIMIT = 56 * 1024;

/**
 * The raw body, or a 413 OAuthError past `limit` bytes. The rest of an oversized body is
 * drained, not kept, so that the 413 can still be sent on the connection.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) {
      req.resume();
      reject(new OAuthError(413, 'invalid_request', 'the request body is too large'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', collect);
        chunks.length = 0;
        req.resume();
        reject(new OAuthError(413, 'invalid_request', 'the request body is too large'));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', collect);
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** The headers every JSON answer of these endpoints carries (helmet's, for a JSON API). */
export function jsonSecurityHeaders(httpsIssuer: boolean): Record<string, string> {
  return {
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
    ...(httpsIssuer ? { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' } : {}),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(payload) });
  res.end(payload);
}

/**
 * The hot path's sendJson: `headers` as a flat [name, value, …] list made once (writeHead takes
 * it as it is, with no object to walk), the body already serialised.
 */
export function sendJsonText(res: ServerResponse, status: number, payload: string, headers: readonly string[], requestId: string): void {
  res.writeHead(status, [...headers, 'X-Request-Id', requestId, 'Content-Length', String(Buffer.byteLength(payload))]);
  res.end(payload);
}

/** sendJsonText's arguments, kept until the end of the turn. */
interface PendingAnswer {
  res: ServerResponse;
  status: number;
  payload: string;
  headers: readonly string[];
  requestId: string;
}

/**
 * A sendJsonText that writes at the end of the current turn of the event loop, together with the
 * other answers of the turn, after its reads (docs/architecture.md#end-of-turn-batches).
 * Out of the handler's reach, a failure to write ends that connection rather than the process.
 */
export function createEndOfTurnSender(): (res: ServerResponse, status: number, payload: string, headers: readonly string[], requestId: string) => void {
  const atEndOfTurn = createTurnQueue<PendingAnswer>((answers) => {
    for (const { res, status, payload, headers, requestId } of answers) {
      try {
        sendJsonText(res, status, payload, headers, requestId);
      } catch {
        res.destroy();
      }
    }
  });
  return (res, status, payload, headers, requestId) => atEndOfTurn({ res, status, payload, headers, requestId });
}

/** jsonSecurityHeaders with the JSON content type, as the flat list sendJsonText takes. */
export function jsonHeaderList(httpsIssuer: boolean): readonly string[] {
  return Object.entries({ ...jsonSecurityHeaders(httpsIssuer), 'Content-Type': 'application/json; charset=utf-8' }).flat();
}
