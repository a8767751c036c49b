import { Router } from 'express';
import { z } from 'zod';
import type { Client, ClientService } from '../../clients/client-service.ts';
import { inApiFieldNames } from '../../http/api-field-names.ts';
import { defineOperation, route } from '../../http/api-operation.ts';
import { errorResponse } from '../../http/common-responses.ts';
import { methodNotAllowed, requireJsonBody } from '../../http/refusals.ts';
import { CLIENT_KINDS } from '../../config/schema.ts';
import { AppError } from '../../shared/errors.ts';
import { ADMIN_BODY_FAILURES, ADMIN_CREDENTIALS, ADMIN_DESCRIPTION, ADMIN_FAILURES, isoDateOrNull } from './admin-operations.ts';
import { adminActor, isoOrNull } from './admin-requests.ts';

const CLIENTS = '/api/v1/admin/clients';

/** The service's names of a client's fields, as this API's clients send them. */
const API_FIELD_NAMES: Readonly<Record<string, string>> = {
  clientId: 'client_id',
  redirectUris: 'redirect_uris',
  defaultResource: 'default_resource',
  accessTokenTtlSeconds: 'access_token_ttl_seconds',
  mayIntrospect: 'may_introspect',
  introspectionSignedResponseAlg: 'introspection_signed_response_alg',
  introspectionEncryptedResponseAlg: 'introspection_encrypted_response_alg',
  introspectionEncryptedResponseEnc: 'introspection_encrypted_response_enc',
  tokenExchange: 'token_exchange',
  subjectTokenKinds: 'subject_token_kinds',
};

/** A JWK Set of public keys; the client service checks each key. */
const jwksSchema = z
  .object({
    keys: z.array(
      z.object({
        kty: z.enum(['RSA', 'EC', 'OKP']),
        kid: z.string().optional(),
        use: z.literal('sig').optional(),
        alg: z.string().optional(),
        n: z.string().optional(),
        e: z.string().optional(),
        crv: z.string().optional(),
        x: z.string().optional(),
        y: z.string().optional(),
      }),
    ),
  })
  .meta({ description: 'A JWK Set of public keys (`private_key_jwt`).' });

/** A token-exchange policy (RFC 8693; docs/token-exchange.md), as this API names its fields. */
const tokenExchangeSchema = z
  .strictObject({
    subject_token_kinds: z.array(z.string()).meta({ description: 'Which of a person\'s credentials it may exchange: `personal_access_token`, `access_token`, `session`.' }),
    audiences: z.array(z.string()).meta({ description: 'Audiences (`oauth.resources`) it may obtain tokens for.' }),
    scopes: z.array(z.string()).meta({ description: 'The most an exchanged token may hold (also never more than the subject credential and the person).' }),
  })
  .meta({ description: 'What the client may obtain by token exchange; null: nothing.' });

const toPolicy = (policy: z.infer<typeof tokenExchangeSchema>) => ({ subjectTokenKinds: policy.subject_token_kinds, audiences: policy.audiences, scopes: policy.scopes });

// The shapes only: the client service checks every value (scopes, URIs, keys) and names what is wrong.
const createBody = z.object({
  client_id: z.string().nullable().optional().meta({ description: 'Generated when left out.' }),
  name: z.string(),
  kind: z.string().meta({ description: '`device`, `service`, `resource_server` or `web`.' }),
  scopes: z.array(z.string()).optional(),
  redirect_uris: z.array(z.string()).optional().meta({ description: '`web` clients only.' }),
  default_resource: z.string().nullable().optional(),
  access_token_ttl_seconds: z.number().nullable().optional(),
  jwks: z.unknown().optional().meta({ description: 'A JWK Set of public keys: the client authenticates with `private_key_jwt` instead of a secret.' }),
  may_introspect: z.boolean().optional(),
  introspection_signed_response_alg: z
    .string()
    .nullable()
    .optional()
    .meta({ description: 'RFC 9701: the algorithm of signed introspection answers. Only the one Tessera signs with (`introspection_signing_alg_values_supported` in discovery) is accepted; it applies to every client and is not stored.' }),
  introspection_encrypted_response_alg: z.unknown().optional().meta({ description: 'RFC 9701 encryption: refused, Tessera does not encrypt introspection answers.' }),
  introspection_encrypted_response_enc: z.unknown().optional().meta({ description: 'RFC 9701 encryption: refused, Tessera does not encrypt introspection answers.' }),
  token_exchange: tokenExchangeSchema.nullable().optional(),
});

const changeBody = z.strictObject({ may_introspect: z.boolean() });

const clientSchema = z.object({
  client_id: z.string(),
  name: z.string(),
  kind: z.enum(CLIENT_KINDS),
  confidential: z.boolean(),
  token_endpoint_auth_method: z.enum(['none', 'client_secret_basic', 'private_key_jwt']),
  jwks: jwksSchema.nullable(),
  redirect_uris: z.array(z.string()),
  scopes: z.array(z.string()),
  default_resource: z.string().nullable(),
  access_token_ttl_seconds: z.number().int().nullable(),
  may_introspect: z.boolean(),
  token_exchange: tokenExchangeSchema.nullable(),
  source: z.enum(['config', 'database']).meta({ description: '`config`: declared in the configuration, never changed here.' }),
  created_at: isoDateOrNull,
  updated_at: isoDateOrNull,
  secret_rotated_at: isoDateOrNull,
  keys_rotated_at: isoDateOrNull,
});

const clientId = z.object({ id: z.string().meta({ description: "The client's `client_id`." }) });
const NO_SUCH_CLIENT = errorResponse('No such client.');
const NOT_HERE = errorResponse('A client declared in the configuration, or a change this kind of client cannot take.');
const TAG = 'Admin: clients';

export const listClientsOperation = defineOperation({
  method: 'get', path: CLIENTS, operationId: 'adminListClients', summary: 'List the OAuth clients', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  responses: { 200: { description: 'Every client, declared or registered.', body: z.object({ clients: z.array(clientSchema) }) }, ...ADMIN_FAILURES },
});

export const createClientOperation = defineOperation({
  method: 'post', path: CLIENTS, operationId: 'adminCreateClient', summary: 'Register an OAuth client; its secret is answered once', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  body: { schema: createBody, required: true },
  responses: {
    201: { description: 'Registered.', body: clientSchema.extend({ client_secret: z.string().nullable().meta({ description: 'Shown only here; null for a client without a secret.' }) }), headers: { Location: "The client's URL." } },
    ...ADMIN_BODY_FAILURES,
    409: errorResponse('The client_id is taken.'),
    ...ADMIN_FAILURES,
  },
});

export const showClientOperation = defineOperation({
  method: 'get', path: `${CLIENTS}/:id`, operationId: 'adminShowClient', summary: 'Show an OAuth client', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: clientId,
  responses: { 200: { description: 'The client.', body: clientSchema }, 404: NO_SUCH_CLIENT, ...ADMIN_FAILURES },
});

export const changeClientOperation = defineOperation({
  method: 'patch', path: `${CLIENTS}/:id`, operationId: 'adminChangeClient', summary: 'Grant or withdraw introspection', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: clientId,
  body: { schema: changeBody, required: true },
  responses: { 200: { description: 'The client as changed.', body: clientSchema }, ...ADMIN_BODY_FAILURES, 404: NO_SUCH_CLIENT, 409: NOT_HERE, ...ADMIN_FAILURES },
});

export const deleteClientOperation = defineOperation({
  method: 'delete', path: `${CLIENTS}/:id`, operationId: 'adminDeleteClient', summary: 'Delete an OAuth client (its grants end)', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: clientId,
  responses: { 204: { description: 'Deleted.' }, 404: NO_SUCH_CLIENT, 409: NOT_HERE, ...ADMIN_FAILURES },
});

export const rotateClientSecretOperation = defineOperation({
  method: 'post', path: `${CLIENTS}/:id/secret`, operationId: 'adminRotateClientSecret', summary: "Replace a client's secret; the new one is answered once", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: clientId,
  responses: { 201: { description: 'The new secret (the old one no longer works).', body: z.object({ client_id: z.string(), client_secret: z.string() }) }, 404: NO_SUCH_CLIENT, 409: NOT_HERE, ...ADMIN_FAILURES },
});

export const replaceClientKeysOperation = defineOperation({
  method: 'put', path: `${CLIENTS}/:id/jwks`, operationId: 'adminReplaceClientKeys', summary: "Replace a `private_key_jwt` client's public keys", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: clientId,
  body: { schema: z.unknown().meta({ description: 'A JWK Set of public keys: `{"keys": […]}`.' }), required: true },
  responses: { 200: { description: 'The client with its new keys.', body: clientSchema }, ...ADMIN_BODY_FAILURES, 404: NO_SUCH_CLIENT, 409: NOT_HERE, ...ADMIN_FAILURES },
});

export const setClientTokenExchangeOperation = defineOperation({
  method: 'put', path: `${CLIENTS}/:id/token-exchange`, operationId: 'adminSetClientTokenExchange', summary: "Set a client's token-exchange policy", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: clientId,
  body: { schema: tokenExchangeSchema, required: true },
  responses: { 200: { description: 'The client with its policy.', body: clientSchema }, ...ADMIN_BODY_FAILURES, 404: NO_SUCH_CLIENT, 409: NOT_HERE, ...ADMIN_FAILURES },
});

export const removeClientTokenExchangeOperation = defineOperation({
  method: 'delete', path: `${CLIENTS}/:id/token-exchange`, operationId: 'adminRemoveClientTokenExchange', summary: "Remove a client's token-exchange policy (it may no longer exchange)", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: clientId,
  responses: { 200: { description: 'The client without a policy.', body: clientSchema }, 404: NO_SUCH_CLIENT, 409: NOT_HERE, ...ADMIN_FAILURES },
});

export function describeClient(client: Client): z.input<typeof clientSchema> {
  return {
    client_id: client.clientId,
    name: client.name,
    kind: client.kind,
    confidential: client.confidential,
    token_endpoint_auth_method: client.authMethod,
    jwks: client.jwks,
    redirect_uris: client.redirectUris,
    scopes: client.scopes,
    default_resource: client.defaultResource,
    access_token_ttl_seconds: client.accessTokenTtlSeconds,
    may_introspect: client.mayIntrospect,
    token_exchange: client.tokenExchange && { subject_token_kinds: client.tokenExchange.subjectTokenKinds, audiences: client.tokenExchange.audiences, scopes: client.tokenExchange.scopes },
    source: client.source,
    created_at: isoOrNull(client.createdAt),
    updated_at: isoOrNull(client.updatedAt),
    secret_rotated_at: isoOrNull(client.secretRotatedAt),
    keys_rotated_at: isoOrNull(client.keysRotatedAt),
  };
}

/**
 * OAuth clients, for administrators, as `tessera client` manages them: register (the secret is
 * answered once), list, show, delete, rotate the secret, replace the public keys, grant or
 * withdraw introspection. Clients declared in the configuration are shown and never changed here.
 */
export function createAdminClientRoutes({ clients }: { clients: ClientService }): Router {
  const router = Router();
  const at = (clientId: string) => `${CLIENTS}/${encodeURIComponent(clientId)}`;

  route(router, listClientsOperation, [], async (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ clients: (await clients.list()).map(describeClient) });
  });

  route(router, createClientOperation, [requireJsonBody()], async (req, res, { body: input }) => {
    try {
      const { client, secret } = await clients.create(
        {
          clientId: input.client_id ?? null,
          name: input.name,
          kind: input.kind as Client['kind'],
          ...(input.scopes ? { scopes: input.scopes } : {}),
          ...(input.redirect_uris ? { redirectUris: input.redirect_uris } : {}),
          ...(input.default_resource !== undefined ? { defaultResource: input.default_resource } : {}),
          ...(input.access_token_ttl_seconds !== undefined ? { accessTokenTtlSeconds: input.access_token_ttl_seconds } : {}),
          ...(input.jwks !== undefined ? { jwks: input.jwks } : {}),
          ...(input.may_introspect !== undefined ? { mayIntrospect: input.may_introspect } : {}),
          ...(input.introspection_signed_response_alg !== undefined ? { introspectionSignedResponseAlg: input.introspection_signed_response_alg } : {}),
          ...(input.introspection_encrypted_response_alg !== undefined ? { introspectionEncryptedResponseAlg: input.introspection_encrypted_response_alg } : {}),
          ...(input.introspection_encrypted_response_enc !== undefined ? { introspectionEncryptedResponseEnc: input.introspection_encrypted_response_enc } : {}),
          ...(input.token_exchange ? { tokenExchange: toPolicy(input.token_exchange) } : {}),
        },
        adminActor(req),
      );
      res.status(201).set('Cache-Control', 'no-store').location(at(client.clientId)).json({ ...describeClient(client), client_secret: secret });
    } catch (error) {
      throw inApiFieldNames(error, API_FIELD_NAMES);
    }
  });
  router.all(CLIENTS, methodNotAllowed(['GET', 'POST']));

  route(router, showClientOperation, [], async (_req, res, { params }) => {
    const client = await clients.find(params.id);
    if (!client) throw AppError.notFound(`No client "${params.id}".`);
    res.set('Cache-Control', 'no-store').json(describeClient(client));
  });

  route(router, changeClientOperation, [requireJsonBody()], async (req, res, { params, body: change }) => {
    try {
      const client = await clients.setIntrospection(params.id, change.may_introspect, adminActor(req));
      res.set('Cache-Control', 'no-store').json(describeClient(client));
    } catch (error) {
      throw inApiFieldNames(error, API_FIELD_NAMES);
    }
  });

  route(router, deleteClientOperation, [], async (req, res, { params }) => {
    await clients.delete(params.id, adminActor(req));
    res.status(204).end();
  });
  router.all(`${CLIENTS}/:id`, methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  route(router, rotateClientSecretOperation, [], async (req, res, { params }) => {
    const secret = await clients.rotateSecret(params.id, adminActor(req));
    res.status(201).set('Cache-Control', 'no-store').json({ client_id: params.id, client_secret: secret });
  });
  router.all(`${CLIENTS}/:id/secret`, methodNotAllowed(['POST']));

  route(router, replaceClientKeysOperation, [requireJsonBody()], async (req, res, { params, body }) => {
    const client = await clients.rotateKeys(params.id, body, adminActor(req));
    res.set('Cache-Control', 'no-store').json(describeClient(client));
  });
  router.all(`${CLIENTS}/:id/jwks`, methodNotAllowed(['PUT']));

  route(router, setClientTokenExchangeOperation, [requireJsonBody()], async (req, res, { params, body }) => {
    try {
      const client = await clients.setTokenExchange(params.id, toPolicy(body), adminActor(req));
      res.set('Cache-Control', 'no-store').json(describeClient(client));
    } catch (error) {
      throw inApiFieldNames(error, API_FIELD_NAMES);
    }
  });
  route(router, removeClientTokenExchangeOperation, [], async (req, res, { params }) => {
    const client = await clients.setTokenExchange(params.id, null, adminActor(req));
    res.set('Cache-Control', 'no-store').json(describeClient(client));
  });
  router.all(`${CLIENTS}/:id/token-exchange`, methodNotAllowed(['PUT', 'DELETE']));

  return router;
}
