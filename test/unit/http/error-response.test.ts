import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorHandler, sendRawError } from '../../../src/http/error-response.ts';
import { requestContext } from '../../../src/http/request-context.ts';
import { AppError, OAuthError } from '../../../src/shared/errors.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { LogCapture } from '../../support/start-tessera.ts';

// The one renderer, on both transports: the same error gives the same status, headers and body
// bytes whether express or a node:http endpoint answers it.

const SECURITY = { 'Cache-Control': 'no-store', Pragma: 'no-cache', 'X-Content-Type-Options': 'nosniff' };
const UNAVAILABLE = new OAuthError(503, 'temporarily_unavailable', 'try again', { headers: { 'Retry-After': '1' } });

/** What each path throws. */
const failures: Record<string, () => unknown> = {
  '/scope': () => new OAuthError(400, 'invalid_scope', 'unknown scope: x'),
  '/challenge': () => new OAuthError(401, 'invalid_client', 'client authentication failed', { headers: { 'WWW-Authenticate': 'Basic realm="tessera"' } }),
  '/quiet': () => new OAuthError(400, 'invalid_grant', ''),
  '/detail': () => new OAuthError(400, 'invalid_grant', 'grant request is invalid', { detail: 'the refresh token was already used' }),
  '/app': () => AppError.conflict('Taken.', [{ field: 'name', code: 'taken', message: 'in use' }]),
  '/crash': () => new Error('connect ECONNREFUSED password=hunter2'),
};

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function answer(url: string) {
  const res = await fetch(url, { headers: { 'x-request-id': 'req-1' } });
  return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() };
}

describe('the error renderer', () => {
  const rawLogs = new LogCapture();
  const expressLogs = new LogCapture();
  const servers: Server[] = [];
  let raw: string;
  let viaExpress: string;
  let withFallback: string;

  beforeAll(async () => {
    const logger = createLogger({ level: 'info', destination: rawLogs });
    const rawServer = (fallback?: OAuthError) =>
      createServer((req, res) => {
        sendRawError(res, failures[req.url!]!(), { requestId: 'req-1', logger, headers: SECURITY, failure: 'endpoint failed', ...(fallback ? { fallback } : {}) });
      });
    const app = express();
    app.use(requestContext(createLogger({ level: 'info', destination: expressLogs })));
    for (const [path, failure] of Object.entries(failures)) {
      app.get(path, () => {
        throw failure();
      });
    }
    app.use(errorHandler());
    servers.push(rawServer(), rawServer(UNAVAILABLE), app.listen(0, '127.0.0.1'));
    [raw, withFallback] = await Promise.all([listen(servers[0]!), listen(servers[1]!)]);
    await new Promise((resolve) => (servers[2]!.listening ? resolve(null) : servers[2]!.once('listening', resolve)));
    viaExpress = `http://127.0.0.1:${(servers[2]!.address() as AddressInfo).port}`;
  });
  afterAll(() => Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))));

  it('renders an OAuthError in RFC 6749 §5.2 shape, never cached, on node:http', async () => {
    const scope = await answer(`${raw}/scope`);
    expect(scope.status).toBe(400);
    expect(scope.text).toBe('{"error":"invalid_scope","error_description":"unknown scope: x"}');
    expect(scope.headers).toMatchObject({
      'cache-control': 'no-store',
      pragma: 'no-cache',
      'x-content-type-options': 'nosniff',
      'content-type': 'application/json; charset=utf-8',
      'x-request-id': 'req-1',
    });
    const challenge = await answer(`${raw}/challenge`);
    expect([challenge.status, challenge.headers['www-authenticate']]).toEqual([401, 'Basic realm="tessera"']);
    expect((await answer(`${raw}/quiet`)).text).toBe('{"error":"invalid_grant"}');
  });

  it('renders the same OAuthError with the same status, OAuth headers and bytes on express', async () => {
    for (const path of ['/scope', '/challenge', '/quiet', '/detail']) {
      const [fromRaw, fromExpress] = await Promise.all([answer(`${raw}${path}`), answer(`${viaExpress}${path}`)]);
      const oauthHeaders = (headers: Record<string, string>) => [headers['cache-control'], headers.pragma, headers['content-type'], headers['www-authenticate']];
      expect({ path, status: fromExpress.status, text: fromExpress.text, headers: oauthHeaders(fromExpress.headers) }).toEqual({
        path,
        status: fromRaw.status,
        text: fromRaw.text,
        headers: oauthHeaders(fromRaw.headers),
      });
    }
  });

  it("keeps an error's detail for the log (express warns with it)", async () => {
    const detail = await answer(`${viaExpress}/detail`);
    expect(detail.text).toBe('{"error":"invalid_grant","error_description":"grant request is invalid"}');
    expect(expressLogs.text).toContain('the refresh token was already used');
  });

  it('renders an AppError in the JSON shape on express', async () => {
    const conflict = await answer(`${viaExpress}/app`);
    expect(conflict.status).toBe(409);
    expect(conflict.text).toBe('{"message":"Taken.","status":409,"errors":[{"field":"name","code":"taken","message":"in use"}]}');
    expect(conflict.headers.pragma).toBeUndefined();
  });

  it('collapses anything else to a 500 that tells the client nothing, and logs it', async () => {
    const onExpress = await answer(`${viaExpress}/crash`);
    expect([onExpress.status, onExpress.text]).toEqual([500, '{"message":"Internal server error.","status":500}']);
    const onRaw = await answer(`${raw}/crash`);
    expect([onRaw.status, onRaw.text]).toEqual([500, '{"error":"server_error","error_description":"oops! something went wrong"}']);
    // An OAuth endpoint answers only OAuthErrors: an AppError there is a failure too.
    expect((await answer(`${raw}/app`)).status).toBe(500);
    const unavailable = await answer(`${withFallback}/crash`);
    expect([unavailable.status, unavailable.headers['retry-after'], unavailable.text]).toEqual([503, '1', '{"error":"temporarily_unavailable","error_description":"try again"}']);
    for (const logs of [rawLogs, expressLogs]) expect(logs.text).toContain('ECONNREFUSED');
    expect(rawLogs.text).toContain('endpoint failed');
    expect(expressLogs.text).toContain('unhandled error');
  });
});
