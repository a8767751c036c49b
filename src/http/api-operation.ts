import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import { parseInput } from '../shared/validation.ts';

// A route of the JSON API is declared once: method, path, the zod schemas of its input and of its
// answers, what it is for and which credentials it takes. `route()` registers it on a router,
// where the declaration validates the request; the same declaration, read back from the app
// (route-inventory.ts declaredOperations), is what /openapi.json describes (openapi-document.ts).

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * The credentials an operation accepts, each a family the document expands into its security
 * schemes (openapi-document.ts): `apiSession` an API session token (Bearer, X-Session and its
 * aliases), `browserSession` the session cookie (with the CSRF header on changes), `personalToken`
 * a personal access token (Bearer, or the API-key header pair), `accessToken` an OAuth access
 * token, `queryToken` a session or personal token as `?access_token=` (discouraged: URLs are logged).
 */
export type CredentialFamily = 'apiSession' | 'browserSession' | 'personalToken' | 'accessToken' | 'queryToken';

/** One answer of an operation: its status's meaning, and the body it carries (JSON unless `contentType` says). */
export interface ResponseDeclaration {
  description: string;
  body?: z.ZodType;
  /** The media type of the body: application/json by default. */
  contentType?: string;
  /** Response headers worth knowing, by name: what each says. */
  headers?: Record<string, string>;
}

export interface ApiOperation<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: HttpMethod;
  /** The path in express syntax (`/api/v1/tokens/:id`); the document writes `{id}`. */
  path: string;
  operationId: string;
  summary: string;
  /** Longer text (CommonMark) for what the schemas cannot say. */
  description?: string;
  tag: string;
  /** The credentials accepted (any one of them); empty for a public operation. */
  credentials: readonly CredentialFamily[];
  params?: P;
  query?: Q;
  /** The request body and the media types it may come in; JSON unless `contentTypes` says. */
  body?: { schema: B; contentTypes?: readonly string[]; required?: boolean };
  /** Every status the operation answers, with its body. */
  responses: Readonly<Record<number, ResponseDeclaration>>;
}

/** An operation's validated input, its types from its schemas. */
export interface OperationInput<O extends ApiOperation> {
  params: O['params'] extends z.ZodType ? z.output<O['params']> : Record<string, never>;
  query: O['query'] extends z.ZodType ? z.output<O['query']> : Record<string, never>;
  body: O extends { body: { schema: infer B extends z.ZodType } } ? z.output<B> : undefined;
}

/** Keeps the literal types of a declaration (its schemas) while checking its shape. */
export function defineOperation<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, O extends ApiOperation<P, Q, B>>(operation: O): O {
  return operation;
}

/** Where a declared route's first handler keeps its declaration, for the inventory to read. */
export const OPERATION = Symbol('tessera.apiOperation');

/** A handler that carries the operation it belongs to. */
export type DeclaredHandler = RequestHandler & { [OPERATION]: ApiOperation };

/** Validates the request with the operation's schemas, in the order params, query, body (400 listing every bad field). */
export function validateInput<O extends ApiOperation>(operation: O, req: Request): OperationInput<O> {
  const params = operation.params ? parseInput(operation.params, req.params) : {};
  const query = operation.query ? parseInput(operation.query, req.query) : {};
  const body = operation.body ? parseInput(operation.body.schema, req.body ?? {}) : undefined;
  return { params, query, body } as OperationInput<O>;
}

/**
 * Registers a declared operation on `router`: `before` (a body reader, the authentication) runs
 * first, then the input is validated, then `handle` gets it; whatever it throws goes to the
 * error handler. The route carries the declaration, so the document is made of what is served.
 */
export function route<O extends ApiOperation>(
  router: Router,
  operation: O,
  before: readonly RequestHandler[],
  handle: (req: Request, res: Response, input: OperationInput<O>) => Promise<void> | void,
): void {
  const declared = Object.assign((_req: Request, _res: Response, next: NextFunction) => next(), { [OPERATION]: operation }) as DeclaredHandler;
  const run: RequestHandler = async (req, res, next) => {
    try {
      await handle(req, res, validateInput(operation, req));
    } catch (error) {
      next(error);
    }
  };
  router[operation.method](operation.path, declared, ...before, run);
}

/** The declaration a route handler carries, if it is one route() registered. */
export function operationOf(handler: unknown): ApiOperation | undefined {
  return typeof handler === 'function' ? (handler as Partial<DeclaredHandler>)[OPERATION] : undefined;
}
