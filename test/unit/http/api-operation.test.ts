import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express, { Router } from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { defineOperation, route } from '../../../src/http/api-operation.ts';
import { errorHandler, errorBodySchema } from '../../../src/http/error-response.ts';
import { buildOpenApiDocument } from '../../../src/http/openapi-document.ts';
import { requestContext } from '../../../src/http/request-context.ts';
import { declaredOperations, listRoutes } from '../../../src/http/route-inventory.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { LogCapture } from '../../support/start-tessera.ts';

// A declared operation on a small app of its own: the declaration validates the request, the
// inventory finds it (and not a route registered without one), and the document describes it.

const renameThing = defineOperation({
  method: 'post',
  path: '/things/:id/name',
  operationId: 'renameThing',
  summary: 'Rename a thing',
  tag: 'Things',
  credentials: ['apiSession', 'browserSession'],
  params: z.object({ id: z.string().regex(/^\d+$/) }),
  query: z.object({ dry: z.enum(['true', 'false']).optional() }),
  body: { schema: z.object({ name: z.string().min(1), tags: z.array(z.string()).default([]) }), required: true },
  responses: {
    200: { description: 'Renamed.', body: z.object({ id: z.number(), name: z.string(), tags: z.array(z.string()), dry: z.boolean() }) },
    400: { description: 'Bad input.', body: errorBodySchema },
  },
});

const config = { issuer: 'https://auth.example.org', sessions: { headerAliases: ['x-archivesspace-session'] }, tokens: { apiUserHeader: 'x-api-user', apiKeyHeader: 'x-api-key' } };

describe('a declared operation', () => {
  let server: Server;
  let base: string;
  const app = express();

  beforeAll(async () => {
    app.use(requestContext(createLogger({ level: 'info', destination: new LogCapture() })));
    app.use(express.json());
    const router = Router();
    route(router, renameThing, [], (_req, res, { params, query, body }) => {
      res.json({ id: Number(params.id), name: body.name, tags: body.tags, dry: query.dry === 'true' });
    });
    router.get('/undeclared', (_req, res) => res.json({}));
    app.use(router);
    app.use(errorHandler());
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('hands the handler its input as the schemas output it', async () => {
    const res = await post('/things/42/name?dry=true', { name: 'Box' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: 42, name: 'Box', tags: [], dry: true });
  });

  it('refuses bad params, query and body with 400 naming every bad field', async () => {
    const res = await post('/things/forty-two/name', { name: 'Box' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ status: 400, errors: [{ field: 'id', code: 'invalid_format' }] });
    const query = await post('/things/42/name?dry=maybe', { name: 'Box' });
    expect(await query.json()).toMatchObject({ errors: [{ field: 'dry', code: 'invalid_value' }] });
    const body = await post('/things/42/name', { name: '', tags: [1] });
    expect(((await body.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['name', 'tags.0']);
  });

  it('is found by the inventory, and a route registered without a declaration is not', () => {
    expect(declaredOperations(app)).toEqual([renameThing]);
    expect(listRoutes(app).map((r) => r.path)).toEqual(['/things/:id/name', '/undeclared']);
  });

  it('is described by the document: its path, parameters, body, answers and credentials', () => {
    const document = buildOpenApiDocument(declaredOperations(app), { config, version: '1.2.3' });
    const operation = document.paths['/things/{id}/name']?.post;
    expect(operation).toMatchObject({ operationId: 'renameThing', tags: ['Things'] });
    expect(operation?.parameters).toEqual([
      { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^\\d+$' } },
      { name: 'dry', in: 'query', required: false, schema: { type: 'string', enum: ['true', 'false'] } },
    ]);
    // The body as a client sends it: `tags` may be left out (the default fills it in).
    expect(operation?.requestBody?.content['application/json']?.schema).toMatchObject({ required: ['name'] });
    expect(operation?.responses['200']?.content?.['application/json']?.schema).toMatchObject({ required: ['id', 'name', 'tags', 'dry'], additionalProperties: false });
    expect(operation?.responses['400']?.content?.['application/json']?.schema).toEqual({ $ref: '#/components/schemas/Error' });
    // Any one of the session token's carriers, or the cookie with its CSRF token (a change).
    expect(operation?.security).toEqual([{ sessionBearer: [] }, { sessionHeader: [] }, { sessionHeader_x_archivesspace_session: [] }, { sessionCookie: [], csrfToken: [] }]);
    expect(document.components.securitySchemes.sessionHeader_x_archivesspace_session).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-archivesspace-session' });
    expect(document.servers).toEqual([{ url: 'https://auth.example.org' }]);
    expect(document.info.version).toBe('1.2.3');
  });
});
