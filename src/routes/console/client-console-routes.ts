import { Router, type Request, type Response } from 'express';
import type { Client, ClientService, CreateClientInput } from '../../clients/client-service.ts';
import type { Config } from '../../config/schema.ts';
import { sendPage } from '../../http/pages.ts';
import type { ShownOnce } from '../../http/shown-once.ts';
import { AppError, type FieldError } from '../../shared/errors.ts';
import { html } from '../../views/html.ts';
import { adminActor } from '../admin/admin-requests.ts';
import { clientPage, clientPath, clientsPage } from './client-pages.ts';
import { consoleViewer, refusal } from './console-requests.ts';
import { confirmPage, formValues, refusedForm, text, type FormState } from './console-views.ts';

export interface ClientConsoleDependencies {
  clients: ClientService;
  shownOnce: ShownOnce;
  config: Config;
}

/** The form's names of the client service's fields. */
const FORM_FIELDS: Readonly<Record<string, string>> = {
  clientId: 'client_id',
  name: 'name',
  kind: 'kind',
  scopes: 'scopes',
  redirectUris: 'redirect_uris',
  defaultResource: 'default_resource',
  accessTokenTtlSeconds: 'access_token_ttl_seconds',
  jwks: 'jwks',
  mayIntrospect: 'may_introspect',
};

const words = (value: string) => value.split(/[\s,]+/).filter(Boolean);

/** A JWK Set typed into a form, or a field error naming the form's field. */
function parseJwks(value: string, field: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw AppError.validation([{ field, code: 'invalid_json', message: 'is not JSON: paste the JWK Set, {"keys": […]}' }]);
  }
}

/** The register form as the client service's input; what the form alone can tell is wrong is refused here. */
function createInput(values: FormState['values']): CreateClientInput {
  const problems: FieldError[] = [];
  const ttl = text(values, 'access_token_ttl_seconds').trim();
  if (ttl && !/^\d{1,9}$/.test(ttl)) problems.push({ field: 'accessTokenTtlSeconds', code: 'invalid', message: 'must be a whole number of seconds' });
  const jwksText = text(values, 'jwks').trim();
  let jwks: unknown;
  if (jwksText) {
    try {
      jwks = parseJwks(jwksText, 'jwks');
    } catch (error) {
      problems.push(...((error as AppError).errors ?? []));
    }
  }
  if (problems.length) throw AppError.validation(problems);
  const scopes = words(text(values, 'scopes'));
  const redirectUris = text(values, 'redirect_uris').split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
  return {
    clientId: text(values, 'client_id').trim() || null,
    name: text(values, 'name'),
    kind: text(values, 'kind') as Client['kind'],
    ...(scopes.length ? { scopes } : {}),
    ...(redirectUris.length ? { redirectUris } : {}),
    ...(text(values, 'default_resource') ? { defaultResource: text(values, 'default_resource') } : {}),
    ...(ttl ? { accessTokenTtlSeconds: Number(ttl) } : {}),
    ...(jwks !== undefined ? { jwks } : {}),
    ...(text(values, 'may_introspect') === 'true' ? { mayIntrospect: true } : {}),
  };
}

function doneNotice(req: Request, client: Client): string | undefined {
  switch (req.query.done) {
    case 'created':
      return `Registered ${client.clientId}.`;
    case 'introspection-granted':
      return `${client.clientId} may introspect tokens now.`;
    case 'introspection-withdrawn':
      return `${client.clientId} may no longer introspect tokens.`;
    case 'keys':
      return `Replaced the public keys of ${client.clientId}; its tokens have ended.`;
    case 'exchange-set':
      return `Saved the token-exchange policy of ${client.clientId}.`;
    case 'exchange-withdrawn':
      return `${client.clientId} may no longer exchange tokens.`;
    default:
      return undefined;
  }
}

/**
 * The console's pages on OAuth clients: /admin/clients (list, register) and /admin/clients/:id.
 * A new secret reaches the browser once: kept for the redirect's page (shown-once.ts), never in
 * the URL or a cookie.
 */
export function createClientConsoleRoutes({ clients, shownOnce, config }: ClientConsoleDependencies): Router {
  const router = Router();
  /** The login session a kept secret is bound to (the console admits login sessions only). */
  const sessionOf = (req: Request) => req.caller!.sessionId!;

  async function target(req: Request): Promise<Client> {
    const client = await clients.find(String(req.params.id));
    if (!client) throw AppError.notFound(`No client "${String(req.params.id)}": it may have been deleted.`);
    return client;
  }

  async function renderList(req: Request, res: Response, status: number, extra: { create?: FormState; notice?: string } = {}) {
    sendPage(
      res,
      status,
      clientsPage({
        viewer: consoleViewer(res),
        clients: await clients.list(),
        resources: Object.keys(config.oauth.resources),
        defaultResource: config.oauth.defaultResource,
        knownScopes: [...Object.keys(config.scopes), 'openid', 'offline_access'],
        ...extra,
      }),
    );
  }

  /** Redirects to the client's page, with its new secret (if any) kept for that page alone. */
  async function toClient(req: Request, res: Response, clientId: string, secret: string | null, done: string) {
    const query: Record<string, string> = secret === null ? { done } : { secret: await shownOnce.keep(sessionOf(req), JSON.stringify({ clientId, secret })) };
    res.redirect(303, `${clientPath(clientId)}?${new URLSearchParams(query).toString()}`);
  }

  router.get('/admin/clients', async (req, res) => {
    await renderList(req, res, 200, req.query.done === 'deleted' ? { notice: 'The client was deleted; its tokens have ended.' } : {});
  });

  router.post('/admin/clients', async (req, res) => {
    const values = formValues(req.body);
    try {
      const { client, secret } = await clients.create(createInput(values), adminActor(req));
      await toClient(req, res, client.clientId, secret, 'created');
    } catch (error) {
      const refused = refusal(error);
      if (!refused) throw error;
      await renderList(req, res, refused.status, { create: refusedForm(refused, values, (field) => FORM_FIELDS[field]) });
    }
  });

  router.get('/admin/clients/:id', async (req, res) => {
    const client = await target(req);
    let secret: string | undefined;
    if (typeof req.query.secret === 'string') {
      const kept = await shownOnce.take(sessionOf(req), req.query.secret);
      const parsed = kept ? (JSON.parse(kept) as { clientId: string; secret: string }) : null;
      if (parsed?.clientId === client.clientId) secret = parsed.secret;
    }
    const notice = doneNotice(req, client);
    sendPage(
      res,
      200,
      clientPage({
        viewer: consoleViewer(res),
        client,
        ...(notice ? { notice } : {}),
        ...(secret ? { secret } : {}),
        ...(typeof req.query.secret === 'string' && !secret ? { secretGone: true } : {}),
      }),
    );
  });

  router.post('/admin/clients/:id/introspection', async (req, res) => {
    const grant = text(formValues(req.body), 'may_introspect') === 'true';
    const client = await clients.setIntrospection(String(req.params.id), grant, adminActor(req));
    res.redirect(303, `${clientPath(client.clientId)}?done=${grant ? 'introspection-granted' : 'introspection-withdrawn'}`);
  });

  // The token-exchange policy (docs/token-exchange.md): set from the form, or withdrawn.
  router.post('/admin/clients/:id/token-exchange', async (req, res) => {
    const client = await target(req);
    const values = formValues(req.body, ['subject_token_kinds']);
    const words = (name: string) => text(values, name).split(/[\s,]+/).filter(Boolean);
    const withdraw = text(values, 'remove') === 'yes';
    try {
      const policy = withdraw ? null : { subjectTokenKinds: values.subject_token_kinds ?? [], audiences: words('audiences'), scopes: words('scopes') };
      await clients.setTokenExchange(client.clientId, policy, adminActor(req));
      res.redirect(303, `${clientPath(client.clientId)}?done=${withdraw ? 'exchange-withdrawn' : 'exchange-set'}`);
    } catch (error) {
      const refused = refusal(error);
      if (!refused) throw error;
      const fields: Record<string, string> = { subjectTokenKinds: 'subject_token_kinds', audiences: 'audiences', scopes: 'scopes' };
      sendPage(res, refused.status, clientPage({ viewer: consoleViewer(res), client, exchange: refusedForm(refused, values, (field) => fields[field]) }));
    }
  });

  router.post('/admin/clients/:id/jwks', async (req, res) => {
    const client = await target(req);
    const values = formValues(req.body);
    try {
      await clients.rotateKeys(client.clientId, parseJwks(text(values, 'jwks'), 'jwks'), adminActor(req));
      res.redirect(303, `${clientPath(client.clientId)}?done=keys`);
    } catch (error) {
      const refused = refusal(error);
      if (!refused) throw error;
      sendPage(res, refused.status, clientPage({ viewer: consoleViewer(res), client, keys: refusedForm(refused, values, (field) => (field === 'jwks' ? 'jwks' : undefined)) }));
    }
  });

  router.get('/admin/clients/:id/rotate-secret', async (req, res) => {
    const client = await target(req);
    sendPage(
      res,
      200,
      confirmPage({
        viewer: consoleViewer(res),
        section: 'clients',
        title: `Rotate the secret of ${client.clientId}?`,
        explanation: html`<p>A new secret is made and shown once. The old one stops working at once, and every token <strong>${client.name}</strong> holds ends: update its configuration straight after.</p>`,
        action: `${clientPath(client.clientId)}/rotate-secret`,
        button: `Rotate the secret of ${client.clientId}`,
        cancel: clientPath(client.clientId),
      }),
    );
  });
  router.post('/admin/clients/:id/rotate-secret', async (req, res) => {
    const client = await target(req);
    const secret = await clients.rotateSecret(client.clientId, adminActor(req));
    await toClient(req, res, client.clientId, secret, 'rotated');
  });

  router.get('/admin/clients/:id/delete', async (req, res) => {
    const client = await target(req);
    if (client.source === 'config') throw AppError.conflict(`Client "${client.clientId}" is declared in the configuration: remove it there.`);
    sendPage(
      res,
      200,
      confirmPage({
        viewer: consoleViewer(res),
        section: 'clients',
        title: `Delete ${client.clientId}?`,
        explanation: html`<p><strong>${client.name}</strong> can no longer sign anyone in or get tokens, and every token it holds ends on every node. This cannot be undone.</p>`,
        action: `${clientPath(client.clientId)}/delete`,
        button: `Delete ${client.clientId}`,
        cancel: clientPath(client.clientId),
      }),
    );
  });
  router.post('/admin/clients/:id/delete', async (req, res) => {
    await clients.delete(String(req.params.id), adminActor(req));
    res.redirect(303, '/admin/clients?done=deleted');
  });

  return router;
}
