import type { TestTessera } from './start-tessera.ts';

// Token-endpoint requests for the tests that hold Tessera's direct grants (client credentials,
// refresh) to oidc-provider's answers: each answer with what differs by nature left out, and which
// of the two answered it (told by the token endpoint's observer, startTessera's onTokenAnswer).

export const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** Headers whose values differ from one answer to the next by nature. */
const PER_ANSWER_HEADERS = new Set(['date', 'x-request-id', 'content-length', 'keep-alive', 'connection', 'etag']);

export interface TokenAnswer {
  status: number;
  /** Every header but PER_ANSWER_HEADERS. */
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** 'tessera' or 'oidc-provider'. */
  answeredBy: string | undefined;
}

/**
 * Who answers a request that a direct grant takes: Tessera, or oidc-provider when the run has
 * direct grants off (TESSERA_DIRECT_GRANTS=false).
 */
export function directPath(tessera: TestTessera): 'tessera' | 'oidc-provider' {
  return tessera.config.oauth.directGrants ? 'tessera' : 'oidc-provider';
}

/** POSTs `form` to the token endpoint of `tessera`. */
export async function tokenRequest(tessera: TestTessera, form: Record<string, string> | URLSearchParams, headers: Record<string, string> = {}): Promise<TokenAnswer> {
  const requestId = `token-${Math.random().toString(36).slice(2)}`;
  const res = await fetch(new URL('/oauth/token', tessera.url), { method: 'POST', headers: { ...FORM, 'x-request-id': requestId, ...headers }, body: new URLSearchParams(form) });
  const body = (await res.json()) as Record<string, unknown>;
  const answer = tessera.tokenAnswers.get(requestId);
  tessera.tokenAnswers.delete(requestId);
  const kept = Object.fromEntries([...res.headers].filter(([name]) => !PER_ANSWER_HEADERS.has(name)));
  return { status: res.status, headers: kept, body, answeredBy: answer?.answeredBy };
}

/** What `tessera`'s introspection endpoint says of `token`, asked by the resource server `caller`. */
export async function introspectAs(tessera: { url: string }, caller: { id: string; secret: string }, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(new URL('/oauth/introspect', tessera.url), { method: 'POST', headers: { ...FORM, authorization: basic(caller.id, caller.secret) }, body: new URLSearchParams({ token }) });
  return (await res.json()) as Record<string, unknown>;
}

/** An answer as the outage tests read it: the status, Retry-After, and the JSON body ({} when empty). */
export interface PostAnswer {
  status: number;
  retryAfter: string | null;
  body: Record<string, unknown>;
}

/** POSTs `form` to `path` on `base` with HTTP Basic as `client`; a request waiting past `timeoutMs` fails (no hang). */
export async function postAsClient(base: string | URL, path: string, client: { id: string; secret: string }, form: Record<string, string>, timeoutMs: number): Promise<PostAnswer> {
  const res = await fetch(new URL(path, base), { method: 'POST', headers: { ...FORM, authorization: basic(client.id, client.secret) }, body: new URLSearchParams(form), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/**
 * The two clients the store tests use, by id with their secrets: `harvester`, a service (client
 * credentials, `read`), and `records-api`, a resource server that introspects.
 */
export async function createHarvesterAndRecordsApi(core: TestTessera['core']): Promise<Record<'harvester' | 'records-api', string>> {
  const by = { actor: 'test' };
  const harvester = (await core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
  const recordsApi = (await core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by)).secret!;
  return { harvester, 'records-api': recordsApi };
}
