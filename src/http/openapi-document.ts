import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { SESSION_COOKIE } from '../credentials/presented-credential.ts';
import type { ApiOperation, CredentialFamily, ResponseDeclaration } from './api-operation.ts';
import { errorBodySchema, fieldErrorSchema, oauthErrorBodySchema } from './error-response.ts';

// The OpenAPI 3.1 document of the JSON API, made of the operations the app declares
// (api-operation.ts): their zod schemas become JSON Schema draft 2020-12 (OpenAPI 3.1's dialect)
// through zod's own z.toJSONSchema. The security schemes follow the configuration (header names,
// session header aliases). Served at /openapi.json (routes/api-reference-routes.ts).

export type JsonSchema = Record<string, unknown>;
type SecurityRequirement = Record<string, string[]>;

/** What the document reads of the configuration: the issuer and the names of the credential headers. */
export interface DocumentConfig {
  issuer: string;
  sessions: Pick<Config['sessions'], 'headerAliases'>;
  tokens: Pick<Config['tokens'], 'apiUserHeader' | 'apiKeyHeader'>;
  /** The operator's product name titles the document (and the reference page). */
  branding?: Pick<Config['branding'], 'productName'>;
}

export interface OpenApiDocument {
  openapi: '3.1.1';
  info: { title: string; version: string; description: string };
  servers: { url: string }[];
  tags: { name: string }[];
  paths: Record<string, Record<string, OperationObject>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
}

export interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security?: SecurityRequirement[];
  parameters?: { name: string; in: 'path' | 'query'; required: boolean; description?: string; schema: JsonSchema }[];
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; headers?: Record<string, { description: string; schema: JsonSchema }>; content?: Record<string, { schema: JsonSchema }> }>;
}

/** Schemas the document names once, in components, and refers to. */
const NAMED_SCHEMAS = new Map<z.ZodType, string>([
  [errorBodySchema, 'Error'],
  [oauthErrorBodySchema, 'OAuthError'],
  [fieldErrorSchema, 'FieldError'],
]);

/** A zod schema as JSON Schema 2020-12: as a request sends it (input) or as an answer carries it (output). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const named = NAMED_SCHEMAS.get(schema);
  if (named) return { $ref: `#/components/schemas/${named}` };
  const converted = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete converted.$schema;
  return converted;
}

/** `/api/v1/tokens/:id` as OpenAPI writes it: `/api/v1/tokens/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The header names a configuration gives the credentials, as scheme names and headers. */
function securitySchemes(config: DocumentConfig): { schemes: Record<string, JsonSchema>; requirements: (family: CredentialFamily, method: string) => SecurityRequirement[] } {
  const aliases = config.sessions.headerAliases.map((header) => [`sessionHeader_${header.replace(/[^A-Za-z0-9]/g, '_')}`, header] as const);
  const schemes: Record<string, JsonSchema> = {
    sessionBearer: { type: 'http', scheme: 'bearer', bearerFormat: 'tsr_ses_…', description: 'An API session token (`POST /users/{username}/login`).' },
    sessionHeader: { type: 'apiKey', in: 'header', name: 'X-Session', description: 'An API session token.' },
    ...Object.fromEntries(aliases.map(([name, header]) => [name, { type: 'apiKey', in: 'header', name: header, description: 'An API session token, in an alias header (`TESSERA_SESSION_HEADER_ALIASES`).' }])),
    sessionCookie: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The browser session (`/login`).' },
    csrfToken: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token', description: "With the session cookie, every change carries the page's CSRF token." },
    personalTokenBearer: { type: 'http', scheme: 'bearer', bearerFormat: 'tsr_pat_…', description: 'A personal access token.' },
    apiUser: { type: 'apiKey', in: 'header', name: config.tokens.apiUserHeader, description: "With the API key: the token owner's username or e-mail (`TESSERA_API_USER_HEADER`)." },
    apiKey: { type: 'apiKey', in: 'header', name: config.tokens.apiKeyHeader, description: 'A personal access token, with the user header (`TESSERA_API_KEY_HEADER`).' },
    tokenQuery: { type: 'apiKey', in: 'query', name: 'access_token', description: 'A session or personal token in the URL: accepted, but discouraged (URLs end up in logs and histories).' },
    oauth: { type: 'openIdConnect', openIdConnectUrl: new URL('/.well-known/openid-configuration', config.issuer).href, description: 'An OAuth access token issued by Tessera, as `Authorization: Bearer`.' },
  };
  const requirements = (family: CredentialFamily, method: string): SecurityRequirement[] => {
    switch (family) {
      case 'apiSession':
        return [{ sessionBearer: [] }, { sessionHeader: [] }, ...aliases.map(([name]) => ({ [name]: [] }))];
      case 'browserSession':
        return [method === 'get' ? { sessionCookie: [] } : { sessionCookie: [], csrfToken: [] }];
      case 'personalToken':
        return [{ personalTokenBearer: [] }, { apiUser: [], apiKey: [] }];
      case 'accessToken':
        return [{ oauth: [] }];
      case 'queryToken':
        return [{ tokenQuery: [] }];
    }
  };
  return { schemes, requirements };
}

function parameters(operation: ApiOperation): OperationObject['parameters'] {
  const found: NonNullable<OperationObject['parameters']> = [];
  for (const [place, schema] of [['path', operation.params], ['query', operation.query]] as const) {
    if (!schema) continue;
    const object = jsonSchemaOf(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, property] of Object.entries(object.properties ?? {})) {
      const { description, ...rest } = property;
      found.push({ name, in: place, required: place === 'path' || (object.required ?? []).includes(name), ...(typeof description === 'string' ? { description } : {}), schema: rest });
    }
  }
  return found.length ? found : undefined;
}

function response({ description, body, contentType = 'application/json', headers }: ResponseDeclaration): OperationObject['responses'][string] {
  return {
    description,
    ...(headers ? { headers: Object.fromEntries(Object.entries(headers).map(([name, text]) => [name, { description: text, schema: { type: 'string' } }])) } : {}),
    ...(body ? { content: { [contentType]: { schema: jsonSchemaOf(body, 'output') } } } : {}),
  };
}

export interface DocumentOptions {
  config: DocumentConfig;
  version: string;
}

/** The document of `operations`, in their order (the app's registration order). */
export function buildOpenApiDocument(operations: readonly ApiOperation[], { config, version }: DocumentOptions): OpenApiDocument {
  const { schemes, requirements } = securitySchemes(config);
  const paths: OpenApiDocument['paths'] = {};
  const tags: string[] = [];
  for (const operation of operations) {
    if (!tags.includes(operation.tag)) tags.push(operation.tag);
    const security = operation.credentials.flatMap((family) => requirements(family, operation.method));
    const params = parameters(operation);
    const contentTypes = operation.body?.contentTypes ?? ['application/json'];
    const item: OperationObject = {
      operationId: operation.operationId,
      summary: operation.summary,
      ...(operation.description ? { description: operation.description } : {}),
      tags: [operation.tag],
      ...(security.length ? { security } : {}),
      ...(params ? { parameters: params } : {}),
      ...(operation.body
        ? { requestBody: { required: operation.body.required ?? false, content: Object.fromEntries(contentTypes.map((type) => [type, { schema: jsonSchemaOf(operation.body!.schema, 'input') }])) } }
        : {}),
      responses: Object.fromEntries(Object.entries(operation.responses).map(([status, declared]) => [status, response(declared)])),
    };
    (paths[openApiPath(operation.path)] ??= {})[operation.method] = item;
  }
  const components: OpenApiDocument['components'] = { schemas: {}, securitySchemes: schemes };
  for (const [schema, name] of NAMED_SCHEMAS) {
    const converted = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output' }) as JsonSchema;
    delete converted.$schema;
    components.schemas[name] = converted;
  }
  // The error body lists field errors by reference.
  (components.schemas.Error as { properties: Record<string, JsonSchema> }).properties.errors = {
    type: 'array',
    items: { $ref: '#/components/schemas/FieldError' },
    description: 'Only for validation failures: every bad field.',
  };
  return {
    openapi: '3.1.1',
    info: {
      title: config.branding?.productName ?? 'Tessera',
      version,
      description:
        'The JSON API of Tessera: password login and API sessions, personal access tokens, who a credential is, forward-auth, health, and the admin API. ' +
        'The OAuth endpoints are described by the issuer metadata (`/.well-known/openid-configuration`). ' +
        'Errors have one shape (`Error`); an unknown path answers `404` and another method `405` with `Allow`, in that shape.',
    },
    servers: [{ url: new URL(config.issuer).origin }],
    tags: tags.map((name) => ({ name })),
    paths,
    components,
  };
}
