import { readFileSync } from 'node:fs';
import { Router, type Express } from 'express';
import { z } from 'zod';
import { defineOperation, route } from '../http/api-operation.ts';
import { buildOpenApiDocument, type DocumentConfig, type OpenApiDocument } from '../http/openapi-document.ts';
import { sendPage } from '../http/pages.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import { declaredOperations } from '../http/route-inventory.ts';
import { apiReferenceBody } from '../views/api-reference.ts';

// The API's description: GET /openapi.json (OpenAPI 3.1, made of the operations the app declares)
// and GET /docs/api, the same rendered as a page. Both are built once, at their first request
// (every route is registered by then), from the app that serves them.

const TAG = 'API description';

export const openApiOperation = defineOperation({
  method: 'get',
  path: '/openapi.json',
  operationId: 'openApiDocument',
  summary: 'This document: the JSON API as OpenAPI 3.1',
  tag: TAG,
  credentials: [],
  responses: { 200: { description: 'The OpenAPI document.', body: z.record(z.string(), z.unknown()) } },
});

export const apiReferenceOperation = defineOperation({
  method: 'get',
  path: '/docs/api',
  operationId: 'apiReferencePage',
  summary: 'This document as a page, for people',
  tag: TAG,
  credentials: [],
  responses: { 200: { description: 'The reference page.', body: z.string(), contentType: 'text/html' } },
});

/** Tessera's version, from its package.json (the document's info.version). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export interface ApiReferenceDependencies {
  config: DocumentConfig;
  version: string;
}

export function createApiReferenceRoutes({ config, version }: ApiReferenceDependencies): Router {
  const router = Router();
  let document: OpenApiDocument | undefined;
  let page: ReturnType<typeof apiReferenceBody> | undefined;
  const documentOf = (app: Express) => (document ??= buildOpenApiDocument(declaredOperations(app), { config, version }));

  route(router, openApiOperation, [], (req, res) => {
    res.set('Cache-Control', 'no-cache').json(documentOf(req.app as Express));
  });
  router.all('/openapi.json', methodNotAllowed(['GET']));

  route(router, apiReferenceOperation, [], (req, res) => {
    page ??= apiReferenceBody(documentOf(req.app as Express));
    sendPage(res, 200, { title: 'API reference', body: page, wide: true });
  });
  router.all('/docs/api', methodNotAllowed(['GET']));

  return router;
}
