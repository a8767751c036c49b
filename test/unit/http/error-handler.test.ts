import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError, OAuthError } from '../../../src/shared/errors.ts';
import { answerErrorsWithPages, errorHandler } from '../../../src/http/error-response.ts';
import { notFound, requireJsonBody } from '../../../src/http/refusals.ts';
import { requestContext } from '../../../src/http/request-context.ts';
import { parseInput } from '../../../src/shared/validation.ts';
import { z } from 'zod';
import { createLogger } from '../../../src/shared/logger.ts';
import { LogCapture } from '../../support/start-tessera.ts';

// The error handler and the JSON-body guard on a small app of their own: routes that fail in
// each way a real route can.
describe('the JSON error shape', () => {
  let server: Server;
  let base: string;
  const logs = new LogCapture();

  beforeAll(async () => {
    const app = express();
    app.use(requestContext(createLogger({ level: 'info', destination: logs })));
    app.use(express.json({ limit: 100 }));
    app.use(express.urlencoded({ extended: false, limit: 100 }));
    app.post('/things', requireJsonBody(), (req, res) => {
      const body = parseInput(z.object({ name: z.string().min(1), count: z.number().int() }), req.body);
      res.status(201).json(body);
    });
    app.get('/crash', () => {
      throw new Error('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2');
    });
    app.get('/limited', () => {
      throw AppError.tooManyRequests(2.2, 50);
    });
    // Pages that answer every refusal as a page (the admin console's).
    app.use('/pages', (_req, res, next) => {
      answerErrorsWithPages(res);
      next();
    });
    app.get('/pages/taken', () => {
      throw AppError.conflict('That <name> is taken.', [{ field: 'name', code: 'taken', message: 'already taken' }]);
    });
    app.get('/forbidden', () => {
      throw new AppError(403, 'csrf', 'The form has expired or did not come from Tessera. Reload the page and try again.');
    });
    app.get('/oauth-refusal', () => {
      throw new OAuthError(405, 'invalid_request', 'GET is not allowed here; use POST', { headers: { Allow: 'POST' } });
    });
    app.get('/down', () => {
      throw AppError.unavailable('The service is temporarily unavailable.');
    });
    app.post('/echo', (req, res) => {
      res.json(req.body);
    });
    app.get('/pages/crash', () => {
      throw new Error('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2');
    });
    app.use(notFound());
    app.use(errorHandler());
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('lists every invalid field with a 400', async () => {
    const res = await fetch(`${base}/things`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: '', count: 1.5 }) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { message: string; status: number; errors: { field: string; code: string }[] };
    expect(body.message).toBe('Validation error.');
    expect(body.status).toBe(400);
    expect(body.errors.map((e) => [e.field, e.code])).toEqual([['name', 'too_small'], ['count', 'invalid_type']]);
  });

  it('answers 415 when a JSON endpoint gets another content type', async () => {
    const res = await fetch(`${base}/things`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'name=x' });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({ message: 'This endpoint accepts only application/json.', status: 415 });
  });

  it('answers 500 without internals, and logs them instead', async () => {
    const res = await fetch(`${base}/crash`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ message: 'Internal server error.', status: 500 });
    expect(text).not.toMatch(/ECONNREFUSED|hunter2/);
    expect(logs.text).toMatch(/unhandled error/);
  });

  it('answers 429 with Retry-After and the RateLimit-* headers in whole seconds', async () => {
    const res = await fetch(`${base}/limited`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect([res.headers.get('ratelimit-limit'), res.headers.get('ratelimit-remaining'), res.headers.get('ratelimit-reset')]).toEqual(['50', '0', '3']);
    expect(await res.json()).toEqual({ message: 'Too many requests. Try again later.', status: 429 });
  });

  it('echoes a sane request id and replaces an unsafe one', async () => {
    const sane = await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'abc-123' } });
    expect(sane.headers.get('x-request-id')).toBe('abc-123');
    const unsafe = await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'a b <script>' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers refusals, unknown paths and failures as pages where a route asked for pages', async () => {
    const taken = await fetch(`${base}/pages/taken`);
    expect(taken.status).toBe(409);
    expect(taken.headers.get('content-type')).toMatch(/^text\/html/);
    expect(taken.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await taken.text();
    expect(page).toContain('That &lt;name&gt; is taken.');
    expect(page).toContain('<code>name</code> already taken');

    const missing = await fetch(`${base}/pages/nowhere`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('<h1>Page not found</h1>');

    const crash = await fetch(`${base}/pages/crash`);
    expect(crash.status).toBe(500);
    const text = await crash.text();
    expect(text).toContain('<h1>Something went wrong</h1>');
    expect(text).not.toMatch(/ECONNREFUSED|hunter2/);
  });

  const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

  it('answers a browser with a page for every error status, and every other client with JSON', async () => {
    const cases: [string, RequestInit, number, string][] = [
      ['/forbidden', {}, 403, 'This form has expired'],
      ['/nowhere', {}, 404, 'Page not found'],
      ['/limited', {}, 429, 'Too many requests'],
      ['/crash', {}, 500, 'Something went wrong'],
      ['/down', {}, 503, 'Temporarily unavailable'],
      ['/echo', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `name=${'x'.repeat(200)}` }, 413, 'Too much to send'],
    ];
    for (const [path, init, status, heading] of cases) {
      const page = await fetch(`${base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), accept: BROWSER } });
      expect({ path, status: page.status, type: page.headers.get('content-type') }).toEqual({ path, status, type: expect.stringMatching(/^text\/html/) });
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      const text = await page.text();
      expect(text).toContain(`<h1>${heading}</h1>`);
      expect(text).not.toMatch(/ECONNREFUSED|hunter2|No route for/);
      for (const accept of ['application/json', '*/*', null, 'text/html;q=0.1, application/json']) {
        const json = await fetch(`${base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), ...(accept === null ? {} : { accept }) } });
        expect({ path, accept, status: json.status, type: json.headers.get('content-type') }).toEqual({ path, accept, status, type: expect.stringMatching(/^application\/json/) });
        expect(await json.json()).toMatchObject({ status, message: expect.any(String) });
      }
    }
  });

  it("answers an OAuth endpoint's refusal as a page for a browser, and in RFC 6749's shape for everyone else", async () => {
    const page = await fetch(`${base}/oauth-refusal`, { headers: { accept: BROWSER } });
    expect([page.status, page.headers.get('allow'), page.headers.get('content-type')]).toEqual([405, 'POST', expect.stringMatching(/^text\/html/)]);
    expect(await page.text()).toContain('<h1>Not available this way</h1>');
    const json = await fetch(`${base}/oauth-refusal`, { headers: { accept: 'application/json' } });
    expect([json.status, json.headers.get('allow')]).toEqual([405, 'POST']);
    expect(await json.json()).toEqual({ error: 'invalid_request', error_description: 'GET is not allowed here; use POST' });
  });

  it('says in the 429 page when to try again, and keeps Retry-After', async () => {
    const res = await fetch(`${base}/limited`, { headers: { accept: BROWSER } });
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await res.text()).toContain('Try again in 3 seconds.');
  });

  it('gives a 500 page the request id as its reference, and nothing of the failure', async () => {
    const res = await fetch(`${base}/crash`, { headers: { accept: BROWSER, 'x-request-id': 'ref-500-page' } });
    const text = await res.text();
    expect(text).toContain('Reference: <code>ref-500-page</code>');
    expect(text).not.toMatch(/ECONNREFUSED|hunter2/);
  });
});

