import { Router } from 'express';
import { z } from 'zod';
import type { Client, ClientService } from '../../clients/client-service.ts';
import { inApiFieldNames } from '../../http/api-field-names.ts';
import { methodNotAllowed, requireJsonBody } from '../../http/refusals.ts';
import { AppError } from '../../shared/errors.ts';
import { parseInput } from '../../shared/validation.ts';
import { adminActor, isoOrNull } from './admin-requests.ts';

const CLIENTS = '/api/v1/admin/clients';

/** The service's names of a client's fields, as this API's clients send them. */
const API_FIELD_NAMES: Readonly<Record<string, string>> = {
  clientId: 'client_id',
  redirectUris: 'redirect_uris',
  defaultResource: 'default_resource',
  accessTokenTtlSeconds: 'access_token_ttl_seconds',
  mayIntrospect: 'may_introspect',
};

// The shapes only: the client service checks every value (scopes, URIs, keys) and names what is wrong.
const createBody = z.object({
  client_id: z.string().nullable().optional(),
  name: z.string(),
  kind: z.string(),
  scopes: z.array(z.string()).optional(),
  redirect_uris: z.array(z.string()).optional(),
  default_resource: z.string().nullable().optional(),
  access_token_ttl_seconds: z.number().nullable().optional(),
  jwks: z.unknown().optional(),
  may_introspect: z.boolean().optional(),
});

const changeBody = z.strictObject({ may_introspect: z.boolean() });

export function describeClient(client: Client) {
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

  router.get(CLIENTS, async (_req, res, next) => {
    try {
      res.set('Cache-Control', 'no-store').json({ clients: (await clients.list()).map(describeClient) });
    } catch (error) {
      next(error);
    }
  });

  router.post(CLIENTS, requireJsonBody(), async (req, res, next) => {
    try {
      const input = parseInput(createBody, req.body ?? {});
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
        },
        adminActor(req),
      );
      res.status(201).set('Cache-Control', 'no-store').location(at(client.clientId)).json({ ...describeClient(client), client_secret: secret });
    } catch (error) {
      next(inApiFieldNames(error, API_FIELD_NAMES));
    }
  });
  router.all(CLIENTS, methodNotAllowed(['GET', 'POST']));

  router.get(`${CLIENTS}/:id`, async (req, res, next) => {
    try {
      const client = await clients.find(String(req.params.id));
      if (!client) throw AppError.notFound(`No client "${String(req.params.id)}".`);
      res.set('Cache-Control', 'no-store').json(describeClient(client));
    } catch (error) {
      next(error);
    }
  });

  router.patch(`${CLIENTS}/:id`, requireJsonBody(), async (req, res, next) => {
    try {
      const change = parseInput(changeBody, req.body ?? {});
      const client = await clients.setIntrospection(String(req.params.id), change.may_introspect, adminActor(req));
      res.set('Cache-Control', 'no-store').json(describeClient(client));
    } catch (error) {
      next(inApiFieldNames(error, API_FIELD_NAMES));
    }
  });

  router.delete(`${CLIENTS}/:id`, async (req, res, next) => {
    try {
      await clients.delete(String(req.params.id), adminActor(req));
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });
  router.all(`${CLIENTS}/:id`, methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  router.post(`${CLIENTS}/:id/secret`, async (req, res, next) => {
    try {
      const secret = await clients.rotateSecret(String(req.params.id), adminActor(req));
      res.status(201).set('Cache-Control', 'no-store').json({ client_id: String(req.params.id), client_secret: secret });
    } catch (error) {
      next(error);
    }
  });
  router.all(`${CLIENTS}/:id/secret`, methodNotAllowed(['POST']));

  router.put(`${CLIENTS}/:id/jwks`, requireJsonBody(), async (req, res, next) => {
    try {
      const client = await clients.rotateKeys(String(req.params.id), req.body, adminActor(req));
      res.set('Cache-Control', 'no-store').json(describeClient(client));
    } catch (error) {
      next(error);
    }
  });
  router.all(`${CLIENTS}/:id/jwks`, methodNotAllowed(['PUT']));

  return router;
}
