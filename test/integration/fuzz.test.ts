import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { TestTessera } from '../support/start-tessera.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// Property-based fuzzing of every route over raw HTTP: random and malformed paths, queries,
// bodies, content types, encodings, credentials and headers. Whatever arrives, Tessera answers
// below 500, in the error shape documented for the route (docs/http-api.md#errors), and logs no
// error; the server is still up at the end. The seed is printed by fast-check on a failure (rerun
// with FUZZ_SEED=<seed>) and with the status histogram after every run.

/** Requests per run: batches of BATCH requests sent together, RUNS batches. */
const BATCH = 8;
const RUNS = Number(process.env.FUZZ_RUNS ?? 1250);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** How a route answers errors: the OAuth shape, the JSON API shape, or (pages) HTML or the JSON API shape. */
type Family = 'oauth' | 'oauth-page' | 'api' | 'page';

interface FuzzRoute {
  path: string;
  family: Family;
}

/**
 * Every route Tessera serves, as the server lists it (server.ts `routes()`): a route added there
 * and missing here fails the inventory test below.
 */
const ROUTES: readonly FuzzRoute[] = [
  { path: '/healthz', family: 'api' },
  { path: '/readyz', family: 'api' },
  { path: '/.well-known/openid-configuration', family: 'oauth' },
  { path: '/.well-known/oauth-authorization-server', family: 'oauth' },
  { path: '/.well-known/jwks.json', family: 'oauth' },
  { path: '/oauth/token', family: 'oauth' },
  { path: '/oauth/introspect', family: 'oauth' },
  { path: '/oauth/revoke', family: 'oauth' },
  { path: '/oauth/device/code', family: 'oauth' },
  { path: '/oauth/userinfo', family: 'oauth' },
  { path: '/oauth/authorize', family: 'oauth-page' },
  { path: '/oauth/authorize/:uid', family: 'oauth-page' },
  { path: '/device', family: 'oauth-page' },
  { path: '/device/:uid', family: 'oauth-page' },
  { path: '/interaction/:uid', family: 'page' },
  { path: '/assets/tessera.css', family: 'page' },
  { path: '/assets/copy.js', family: 'page' },
  { path: '/assets/brand.css', family: 'page' },
  { path: '/', family: 'page' },
  { path: '/login', family: 'page' },
  { path: '/logout', family: 'page' },
  { path: '/settings', family: 'page' },
  { path: '/settings/tokens', family: 'page' },
  { path: '/settings/tokens/:id/revoke', family: 'page' },
  { path: '/settings/tokens/created', family: 'page' },
  { path: '/settings/security', family: 'page' },
  { path: '/login/:id', family: 'page' },
  { path: '/interaction/:uid/login/:id', family: 'page' },
  { path: '/login/:id/callback', family: 'page' },
  { path: '/settings/sign-in', family: 'page' },
  { path: '/settings/sign-in/link/:id', family: 'page' },
  { path: '/settings/sign-in/unlink', family: 'page' },
  { path: '/admin/identity-providers', family: 'page' },
  { path: '/admin/users/:id/identities', family: 'page' },
  { path: '/admin/users/:id/identities/remove', family: 'page' },
  { path: '/settings/logins', family: 'page' },
  { path: '/settings/logins/:handle/revoke', family: 'page' },
  { path: '/settings/sessions/:id/end', family: 'page' },
  { path: '/settings/signins/:handle/end', family: 'page' },
  { path: '/settings/password', family: 'page' },
  { path: '/login/forgot', family: 'page' },
  { path: '/login/reset', family: 'page' },
  { path: '/login/reset/done', family: 'page' },
  { path: '/settings/two-factor', family: 'page' },
  { path: '/settings/two-factor/totp', family: 'page' },
  { path: '/settings/two-factor/totp/confirm', family: 'page' },
  { path: '/settings/two-factor/totp/remove', family: 'page' },
  { path: '/settings/two-factor/recovery-codes', family: 'page' },
  { path: '/settings/two-factor/passkeys', family: 'page' },
  { path: '/settings/two-factor/passkeys/:id/remove', family: 'page' },
  { path: '/login/second-factor', family: 'page' },
  { path: '/login/second-factor/cancel', family: 'page' },
  { path: '/login/second-factor/enrol', family: 'page' },
  { path: '/interaction/:uid/second-factor', family: 'page' },
  { path: '/assets/passkeys.js', family: 'page' },
  { path: '/auth/verify', family: 'api' },
  { path: '/users/:username/login', family: 'api' },
  { path: '/api/v1/sessions', family: 'api' },
  { path: '/api/v1/admin/identity-providers', family: 'api' },
  { path: '/api/v1/admin/users/:id/identities', family: 'api' },
  { path: '/api/v1/admin/users/:id/identities/:provider/:subject', family: 'api' },
  { path: '/api/v1/sessions/:id', family: 'api' },
  { path: '/api/v1/logins', family: 'api' },
  { path: '/api/v1/logins/:id', family: 'api' },
  { path: '/api/v1/tokens', family: 'api' },
  { path: '/api/v1/tokens/:id', family: 'api' },
  { path: '/api/v1/tokens/:id/rotate', family: 'api' },
  { path: '/api/v1/me', family: 'api' },
  { path: '/api/v1/leaked-tokens/:reporter', family: 'api' },
  { path: '/api/v1/admin/users', family: 'api' },
  { path: '/api/v1/admin/users/:id', family: 'api' },
  { path: '/api/v1/admin/users/:id/unlock', family: 'api' },
  { path: '/api/v1/admin/users/:id/sign-out', family: 'api' },
  { path: '/api/v1/admin/clients', family: 'api' },
  { path: '/api/v1/admin/clients/:id', family: 'api' },
  { path: '/api/v1/admin/clients/:id/secret', family: 'api' },
  { path: '/api/v1/admin/clients/:id/jwks', family: 'api' },
  { path: '/api/v1/admin/clients/:id/token-exchange', family: 'api' },
  { path: '/api/v1/admin/keys', family: 'api' },
  { path: '/api/v1/admin/keys/rotate', family: 'api' },
  { path: '/api/v1/admin/audit', family: 'api' },
  { path: '/api/v1/admin/audit/export', family: 'api' },
  { path: '/openapi.json', family: 'api' },
  { path: '/docs/api', family: 'page' },
  { path: '/admin', family: 'page' },
  { path: '/admin/users', family: 'page' },
  { path: '/admin/users/:id', family: 'page' },
  { path: '/admin/users/:id/disable', family: 'page' },
  { path: '/admin/users/:id/enable', family: 'page' },
  { path: '/admin/users/:id/unlock', family: 'page' },
  { path: '/admin/users/:id/email', family: 'page' },
  { path: '/admin/users/:id/scopes', family: 'page' },
  { path: '/admin/users/:id/password', family: 'page' },
  { path: '/admin/users/:id/sign-out', family: 'page' },
  { path: '/admin/users/:id/delete', family: 'page' },
  { path: '/admin/clients', family: 'page' },
  { path: '/admin/clients/:id', family: 'page' },
  { path: '/admin/clients/:id/introspection', family: 'page' },
  { path: '/admin/clients/:id/jwks', family: 'page' },
  { path: '/admin/clients/:id/token-exchange', family: 'page' },
  { path: '/admin/clients/:id/rotate-secret', family: 'page' },
  { path: '/admin/clients/:id/delete', family: 'page' },
  { path: '/admin/keys', family: 'page' },
  { path: '/admin/keys/rotate', family: 'page' },
  { path: '/admin/audit', family: 'page' },
];

/** Paths no route serves: the 404 of each family. */
const UNROUTED: readonly FuzzRoute[] = [
  { path: '/oauth/logout', family: 'api' },
  { path: '/oauth/nothing', family: 'api' },
  { path: '/api/v2/me', family: 'api' },
];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const PARAMETER_NAMES = [
  'grant_type', 'client_id', 'client_secret', 'scope', 'resource', 'code', 'code_verifier', 'redirect_uri', 'response_type', 'state', 'nonce',
  'refresh_token', 'device_code', 'user_code', 'token', 'token_type_hint', 'client_assertion', 'client_assertion_type', 'access_token',
  'password', 'username', 'csrf', 'next', 'name', 'scopes', 'expires_in_days', 'confirm', 'abort', 'xsrf', 'prompt', 'login', 'consent',
  'email', 'disabled', 'kind', 'redirect_uris', 'may_introspect', 'jwks', 'q', 'cursor', 'limit', 'user', 'user_id', 'action', 'since', 'until',
];
/** Routes that end the session that calls them. */
const ENDS_ITS_SESSION = new Set(['/logout', '/api/v1/sessions/:id']);
/** The clients workingCredentials registers, for client_id values that exist. */
const CLIENT_IDS = ['fuzz-service', 'fuzz-rs', 'fuzz-cli'];
const GRANT_TYPES = ['client_credentials', 'refresh_token', 'authorization_code', 'urn:ietf:params:oauth:grant-type:device_code', 'password', ''];

/** Text as it may arrive: ASCII, any unicode, control characters, or nothing. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', ' ', '\u0000', '%', '%ZZ', '%E0%A4%A', '%ff', '../..', 'a'.repeat(5000), 'tsr_pat_', 'tsr_ses_', '{}', '[]', 'null'),
);

/** A string as raw bytes in a latin1 string: what node:http writes byte for byte. */
const wireBytes = (value: string) => Buffer.from(value, 'utf8').toString('latin1');
/** The same as a header value: what HTTP allows there (node:http refuses control characters). */
const headerBytes = (value: string) => [...wireBytes(value)].filter((char) => char === '\t' || (char >= ' ' && char !== '\x7f')).join('');

/** A path parameter, percent-encoded or raw (malformed encodings included). */
const segment = fc.oneof(
  fc.constantFrom('x', 'admin', 'github', 'admin@example.org', '%ZZ', '%ff', '%E0%A4%A', '%00', '..', '%2F', 'a'.repeat(300), '0193', '%', '%%'),
  text.map((value) => encodeURIComponent(value)).filter((value) => value.length > 0),
  fc.string({ unit: 'grapheme', maxLength: 12 }).map((value) => [...wireBytes(value)].filter((char) => char > ' ' && !'\x7f?#/'.includes(char)).join('')).filter((value) => value.length > 0),
);

const parameterName = fc.oneof(fc.constantFrom(...PARAMETER_NAMES), text.map(encodeURIComponent), fc.constantFrom('pass%77ord', 'access%5Ftoken', '%ZZ', 'a[b]', 'a[]'));
const parameterValue = fc.oneof(fc.constantFrom(...GRANT_TYPES), fc.constantFrom(...CLIENT_IDS), text.map(encodeURIComponent), fc.constantFrom('%ZZ', '%E0%A4%A', 'openid read', 'read%20deposit%3Awrite'));
/** name=value pairs, names often repeated. */
const pairs = fc.array(fc.tuple(parameterName, parameterValue), { maxLength: 8 }).map((list) => list.map(([name, value]) => `${name}=${value}`).join('&'));

const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  fc.dictionary(fc.constantFrom(...PARAMETER_NAMES), fc.jsonValue({ maxDepth: 2 })).map((value) => JSON.stringify(value)),
  fc.constantFrom('{', '{"password":', '[1,2', '"\\ud800"', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '9'.repeat(400), `${'['.repeat(5000)}${']'.repeat(5000)}`),
);
const body = fc.oneof(
  { weight: 3, arbitrary: pairs },
  { weight: 2, arbitrary: jsonBody },
  { weight: 1, arbitrary: text },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(70 * 1024), `password=${'p'.repeat(20_000)}`) },
);

const contentType = fc.oneof(
  fc.constantFrom(
    'application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=xyz', 'multipart/form-data',
    'application/x-www-form-urlencoded; charset=utf-8', 'application/x-www-form-urlencoded; charset=latin1', 'application/x-www-form-urlencoded; charset=nope',
    'application/json; charset=utf-16', 'application/json; charset=', 'application/jwt', 'application/jose', '*/*', ';;;', 'application/', '"',
    'APPLICATION/JSON', 'application/x-www-form-urlencoded, application/json',
  ),
  text.map(headerBytes),
);
const contentEncoding = fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown', 'gzip, gzip', 'GZIP', '');
const accept = fc.oneof(
  fc.constantFrom('application/json', 'text/html', '*/*', 'text/html;q=0.1, application/json', 'application/jwt', '', 'text/html, */*;q=0.1'),
  // RFC 9701 signed introspection answers, and weights as they may come.
  fc.constantFrom('application/token-introspection+jwt', 'application/token-introspection+jwt;q=0.5, application/json', 'APPLICATION/TOKEN-INTROSPECTION+JWT;Q=1.000'),
  text.map((weight) => `application/token-introspection+jwt;q=${headerBytes(weight)}, application/json;q=0.5`),
);

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`, 'latin1').toString('base64')}`;
const authorization = fc.oneof(
  fc.tuple(text, text).map(([id, secret]) => basic(wireBytes(id), wireBytes(secret))),
  fc.tuple(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'DPoP', 'Basic', 'Negotiate', ''), text).map(([scheme, value]) => `${scheme} ${headerBytes(value)}`),
  fc.constantFrom('Basic %%%', 'Basic Og==', 'Basic ===', 'Bearer tsr_pat_0000000000000000000000000000000000000000', 'Bearer tsr_ses_x', 'Bearer '),
);
const cookie = fc.oneof(
  fc.constantFrom('tessera_session=%E0%A4%A', 'tessera_session=tsr_ses_x', 'tessera_login_csrf=%', '_interaction=x; _interaction.sig=y', '_session=x', '=;=;', 'a'),
  fc.tuple(fc.constantFrom('tessera_session', 'tessera_login_csrf', '_session', '_interaction', '_interaction_resume', 'x'), text).map(([name, value]) => `${name}=${headerBytes(value).replace(/;/g, '')}`),
);
/** Other headers Tessera reads, with anything in them. */
const extraHeader = fc.tuple(
  fc.constantFrom('x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-original-uri', 'x-forwarded-uri', 'x-request-id', 'x-session', 'x-api-user', 'x-api-key', 'x-csrf-token', 'origin', 'dpop', 'host', 'range', 'if-none-match', 'expect', 'transfer-encoding-x'),
  text.map(headerBytes),
);

/** `arbitrary` in about `percent` of the cases, otherwise null. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, percent: number) =>
  fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(null) }, { weight: percent, arbitrary });

interface FuzzCase {
  route: FuzzRoute;
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer | undefined;
}

/** Everything of a request but its route and method. */
const requestParts = fc.record({
  segments: fc.array(segment, { minLength: 2, maxLength: 2 }),
  trailingSlash: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  query: sometimes(pairs, 50),
  body: sometimes(body, 60),
  gzipped: fc.boolean(),
  contentType: sometimes(contentType, 70),
  contentEncoding: sometimes(contentEncoding, 15),
  accept: sometimes(accept, 40),
  authorization: sometimes(authorization, 35),
  cookie: sometimes(cookie, 25),
  extra: fc.array(extraHeader, { maxLength: 3 }),
  hugeHeader: sometimes(fc.constantFrom(4_000, 20_000, 70_000), 5),
});

/** A case for `fuzzedRoute` as it is sent. */
function toCase(fuzzedRoute: FuzzRoute, method: string, c: typeof requestParts extends fc.Arbitrary<infer T> ? T : never, credential: readonly [string, string] | null): FuzzCase {
  let index = 0;
  let path = fuzzedRoute.path.replace(/:[a-z]+/g, () => c.segments[index++ % 2]!);
  if (c.trailingSlash) path += '/';
  if (c.query !== null) path += `?${c.query.replace(/ /g, '+')}`;
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of c.extra) headers[name] = value;
  if (c.accept !== null) headers.accept = c.accept;
  if (c.authorization !== null) headers.authorization = c.authorization;
  if (c.cookie !== null) headers.cookie = c.cookie;
  if (c.contentType !== null) headers['content-type'] = c.contentType;
  if (c.contentEncoding !== null) headers['content-encoding'] = c.contentEncoding;
  if (c.hugeHeader !== null) headers['x-padding'] = 'p'.repeat(c.hugeHeader);
  if (credential !== null) headers[credential[0]] = credential[1];
  const raw = c.body === null ? undefined : Buffer.from(c.body, 'latin1');
  const sent = raw && c.gzipped && c.contentEncoding === 'gzip' ? gzipSync(raw) : raw;
  // OAuth endpoints are matched exactly: with a trailing slash the path is no route (express's JSON 404 or 400).
  const route: FuzzRoute = c.trailingSlash && fuzzedRoute.family === 'oauth' ? { path: fuzzedRoute.path, family: 'api' } : fuzzedRoute;
  const fuzzed: FuzzCase = { route, method, path, headers, body: sent };
  // fast-check prints a failing case this way (bodies and headers cut short).
  return Object.assign(fuzzed, { [fc.toStringMethod]: () => describeCase(fuzzed) });
}

/**
 * A request to one of the routes (the methods each serves, as the server lists them) or to no
 * route, sometimes with a credential that works (`credentials`: header name and value), so that
 * the fuzzing reaches past the authentication of each route.
 */
const fuzzCase = (methodsOf: ReadonlyMap<string, readonly string[]>, credentials: readonly (readonly [string, string])[]) =>
  fc
    .oneof({ weight: 12, arbitrary: fc.constantFrom(...ROUTES) }, { weight: 1, arbitrary: fc.constantFrom(...UNROUTED) })
    .chain((route) => {
      const served = methodsOf.get(route.path) ?? [];
      // Mostly a method the route serves, then any other.
      const method = fc.oneof(
        { weight: served.length ? 6 : 0, arbitrary: fc.constantFrom(...(served.length ? served : ['GET'])) },
        { weight: 2, arbitrary: fc.constantFrom(...METHODS) },
        { weight: 1, arbitrary: fc.constantFrom('PROPFIND', 'TRACE', 'SEARCH', 'M-SEARCH', 'PURGE') },
      );
      // Routes that end the session they are shown get none of the working sessions (the suite would soon have none left).
      const usable = ENDS_ITS_SESSION.has(route.path) ? credentials.filter(([, value]) => !value.includes('tsr_ses_')) : credentials;
      return fc.record({ route: fc.constant(route), method, rest: requestParts, credential: sometimes(fc.constantFrom(...usable), 30) });
    })
    .map(({ route, method, rest, credential }) => toCase(route, method, rest, credential));

interface Answer {
  /** 0: node:http refused it unparsed and closed the connection before the client read the answer. */
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

function send(base: URL, agent: Agent | false, c: FuzzCase): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, method: c.method, path: c.path, headers: { ...c.headers, ...(c.body ? { 'content-length': c.body.length } : {}) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // node:http answers a request it cannot parse (a header past its limit, bytes a URL may not
      // hold) with 400 or 431 and closes the connection, maybe while the client is still writing:
      // the client sees a reset. Sent again without its body on a connection of its own, such a
      // request is answered by the parser; anything else was reset by Tessera, which it must not.
      if (!['ECONNRESET', 'EPIPE'].includes(error.code ?? '') || agent === false) {
        reject(new Error(`${error.message}: ${describeCase(c)}`));
        return;
      }
      send(base, false, { ...c, body: undefined }).then((again) => {
        if (again.headers['content-type'] === undefined && [400, 431].includes(again.status)) resolve({ status: 0, headers: {}, text: '' });
        else reject(new Error(`${error.message} (without its body: ${again.status}): ${describeCase(c)}`));
      }, reject);
    });
    req.end(c.body);
  });
}

const isJson = (answer: Answer) => /^application\/json\b/i.test(answer.headers['content-type'] ?? '');
const isHtml = (answer: Answer) => /^text\/html\b/i.test(answer.headers['content-type'] ?? '');

/** Why an answer breaks the rules of its route, or null when it keeps them. */
function violation(c: FuzzCase, answer: Answer): string | null {
  if (answer.status === 0) return null;
  if (answer.status >= 500) return `answered ${answer.status}`;
  if (answer.status < 400) return null;
  // node:http refuses what it cannot parse, or an Expect it does not know, before any handler
  // (no body, no content type).
  if (answer.headers['content-type'] === undefined && answer.text === '' && [400, 413, 417, 431].includes(answer.status)) return null;
  if (c.method === 'HEAD') return answer.text === '' ? null : 'a HEAD answer with a body';
  if (answer.status === 405 && !answer.headers.allow) return 'a 405 without Allow';
  let parsed: unknown;
  try {
    parsed = isJson(answer) ? JSON.parse(answer.text) : undefined;
  } catch {
    return 'a JSON content type with a body that is not JSON';
  }
  const oauthShape = () => {
    const body = parsed as { error?: unknown; error_description?: unknown } | undefined;
    if (!body || typeof body.error !== 'string') return false;
    return Object.keys(body).every((key) => key === 'error' || (key === 'error_description' && typeof body.error_description === 'string'));
  };
  const apiShape = () => {
    const body = parsed as { message?: unknown; status?: unknown } | undefined;
    return !!body && typeof body.message === 'string' && body.status === answer.status;
  };
  // A browser (its Accept prefers text/html: of the fuzzed values, those that name it first at
  // full weight) gets a page for any error; every other client JSON.
  const browser = /^text\/html(,|$)/.test(String(c.headers.accept ?? ''));
  if (browser && isHtml(answer) && c.route.family !== 'oauth') return null;
  // No route at all (a route's path with a trailing slash, say): the JSON 404 of every family.
  if (answer.status === 404 && apiShape()) return null;
  switch (c.route.family) {
    case 'oauth':
      // oidc-provider renders its errors as a page for a client that prefers HTML.
      return oauthShape() || (isHtml(answer) && /html/.test(String(c.headers.accept ?? ''))) ? null : 'not in the OAuth error shape';
    case 'oauth-page':
      return oauthShape() || isHtml(answer) ? null : 'neither an OAuth error nor a page';
    case 'page':
      return apiShape() || isHtml(answer) ? null : 'neither the JSON error shape nor a page';
    case 'api':
      return apiShape() ? null : 'not in the JSON error shape';
  }
}

/** A case as a failure message shows it (bodies cut short). */
function describeCase(c: FuzzCase): string {
  const headers = Object.fromEntries(Object.entries(c.headers).map(([name, value]) => [name, String(value).slice(0, 200)]));
  return `${c.method} ${c.path.slice(0, 300)} ${JSON.stringify(headers)} body=${JSON.stringify(c.body?.toString('latin1').slice(0, 300) ?? null)}`;
}

describe('fuzzing every route', () => {
  const suite = tesseraForSuite(
    {},
    {
      // Generous limits: a 429 is a fine answer, but a suite answered 429 fuzzes nothing.
      loginLimits: { failuresPerUsername: 1_000_000, failuresPerIp: 1_000_000 },
      api: { requestsPerIpPerMinute: 1_000_000 },
      oauth: { userCodeAttemptsPerIpPerHour: 1_000_000, userCodeAttemptsPerSessionPerHour: 1_000_000 },
      passwords: { hashing: { maxQueue: 10_000, deadlineMs: 60_000, busyCorePercent: 100 } },
      // Mail on, so that the password-reset pages are served (to a port nothing listens on: a
      // message that would go out fails in the background, as on an SMTP outage).
      mail: { smtp: { host: '127.0.0.1', port: 9 }, from: 'fuzz@example.org' },
      passwordReset: { requestsPerAddressPerHour: 1_000_000 },
      // The leaked-token endpoint served; its keys are never read (no fuzzed request is signed).
      leakedTokens: { enabled: true, reporters: { github: { keysUrl: 'http://127.0.0.1:9/keys' } } },
    },
  );

  it('the fuzzed routes are every route the server serves', () => {
    const served = suite.tessera.routes().map((route) => route.path);
    const fuzzed = ROUTES.map((route) => route.path);
    expect({ missingFromFuzzList: served.filter((path) => !fuzzed.includes(path)), notServed: fuzzed.filter((path) => !served.includes(path)) }).toEqual({ missingFromFuzzList: [], notServed: [] });
  });

  it(`answers ${BATCH * RUNS} fuzzed requests below 500, in each route's error shape`, async () => {
    const base = new URL(suite.tessera.url);
    const methodsOf = new Map(suite.tessera.routes().map((route) => [route.path, route.methods]));
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const histogram = new Map<string, number>();
    let cases = 0;
    const started = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fuzzCase(methodsOf, await workingCredentials(suite.tessera)), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
          const answers = await Promise.all(batch.map((c) => send(base, agent, c)));
          batch.forEach((c, i) => {
            const answer = answers[i]!;
            cases += 1;
            histogram.set(String(answer.status), (histogram.get(String(answer.status)) ?? 0) + 1);
            const wrong = violation(c, answer);
            if (wrong) throw new Error(`${wrong}: ${describeCase(c)}\n→ ${answer.status} ${answer.headers['content-type'] ?? ''} ${answer.text.slice(0, 300)}`);
          });
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: false },
      );
    } finally {
      agent.destroy();
      const sorted = Object.fromEntries([...histogram].sort(([a], [b]) => a.localeCompare(b)));
      const summary = { seed: SEED, cases, seconds: (Date.now() - started) / 1000, statuses: sorted };
      const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-'));
      writeFileSync(join(dir, 'histogram.json'), `${JSON.stringify(summary, null, 2)}\n`);
      console.log(`fuzz: ${JSON.stringify(summary)} (also in ${join(dir, 'histogram.json')})`);
    }
    expect(cases).toBeGreaterThanOrEqual(BATCH * RUNS);
    // Still up, and nothing it answered was an error of its own.
    expect((await fetch(`${suite.tessera.url}/healthz`)).status).toBe(200);
    const lines = suite.tessera.logs.lines;
    expect(lines.filter((line) => !isJsonLine(line))).toEqual([]);
    expect(lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
  }, 240_000);
});

/**
 * Credentials that work, as the headers that carry them: API sessions of the first account (several:
 * a fuzzed POST /logout or DELETE /api/v1/sessions/… may end one), a personal token, a service
 * client's and a resource server's secrets.
 */
async function workingCredentials(tessera: TestTessera): Promise<(readonly [string, string])[]> {
  const by = { actor: 'fuzz' };
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const sessions: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${tessera.url}/users/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'initial-admin-password' }) });
    sessions.push(((await res.json()) as { session: string }).session);
  }
  const created = await fetch(`${tessera.url}/api/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-session': sessions[0]! }, body: JSON.stringify({ name: 'fuzz' }) });
  const { token } = (await created.json()) as { token: string };
  const service = (await tessera.core.clients.create({ clientId: 'fuzz-service', name: 'Fuzz service', kind: 'service', scopes: ['read'] }, by)).secret!;
  const resourceServer = (await tessera.core.clients.create({ clientId: 'fuzz-rs', name: 'Fuzz RS', kind: 'resource_server' }, by)).secret!;
  await tessera.core.clients.create({ clientId: 'fuzz-cli', name: 'Fuzz CLI', kind: 'device', scopes: ['openid', 'read', 'offline_access'] }, by);
  expect(sessions.every((session) => session.startsWith('tsr_ses_')) && token.startsWith('tsr_pat_')).toBe(true);
  return [
    ...sessions.map((session) => ['x-session', session] as const),
    ['authorization', `Bearer ${sessions[1]!}`],
    ['authorization', `Bearer ${token}`],
    ['x-api-key', token],
    ['authorization', basic('fuzz-service', service)],
    ['authorization', basic('fuzz-rs', resourceServer)],
    ['cookie', `tessera_session=${sessions[2]!}`],
  ];
}

function isJsonLine(line: string): boolean {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
}
