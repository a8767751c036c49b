import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { authenticatedFetch, type AccessTokenSource } from '../src/authenticated-fetch.ts';

/** A resource server that accepts only the tokens in `accepted`, and records what it was sent. */
function resourceServer() {
  const accepted = new Set<string>();
  const seen: { method: string; authorization: string | undefined; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, authorization: req.headers.authorization, body });
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      res.writeHead(token && accepted.has(token) ? 200 : 401, { 'content-type': 'text/plain' }).end(token && accepted.has(token) ? 'ok' : 'no');
    });
  });
  return { server, accepted, seen };
}

/** Hands out token-1, token-2, … and records the renewals it was asked for. */
function counter(): AccessTokenSource & { renewals: string[] } {
  let current = 1;
  const renewals: string[] = [];
  return {
    renewals,
    getAccessToken: async () => `token-${current}`,
    renewAccessToken: async (rejected) => {
      renewals.push(rejected);
      current += 1;
      return `token-${current}`;
    },
  };
}

describe('authenticatedFetch', () => {
  const resource = resourceServer();
  let url: string;
  beforeAll(async () => {
    await new Promise<void>((listening) => resource.server.listen(0, '127.0.0.1', listening));
    url = `http://127.0.0.1:${(resource.server.address() as { port: number }).port}/records`;
  });
  afterAll(async () => new Promise<void>((closed) => (resource.server as Server).close(() => closed())));

  it('sends the Bearer token and does not renew it when it is accepted', async () => {
    resource.accepted.add('token-1');
    const source = counter();
    const response = await authenticatedFetch(source)(url, { headers: { 'x-other': 'kept' } });
    expect(response.status).toBe(200);
    expect(source.renewals).toEqual([]);
    expect(resource.seen.at(-1)).toMatchObject({ method: 'GET', authorization: 'Bearer token-1' });
  });

  it('on a 401 renews the token once and sends the request, body and all, once more', async () => {
    resource.accepted.clear();
    resource.accepted.add('token-2');
    resource.seen.length = 0;
    const source = counter();
    const response = await authenticatedFetch(source)(url, { method: 'POST', body: JSON.stringify({ title: 'a deposit' }), headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(200);
    expect(source.renewals).toEqual(['token-1']);
    expect(resource.seen).toEqual([
      { method: 'POST', authorization: 'Bearer token-1', body: '{"title":"a deposit"}' },
      { method: 'POST', authorization: 'Bearer token-2', body: '{"title":"a deposit"}' },
    ]);
  });

  it('retries only once: a second 401 is the answer', async () => {
    resource.accepted.clear();
    resource.seen.length = 0;
    const source = counter();
    const response = await authenticatedFetch(source)(new Request(url, { method: 'PUT', body: 'payload' }));
    expect(response.status).toBe(401);
    expect(source.renewals).toEqual(['token-1']);
    expect(resource.seen.map((request) => [request.authorization, request.body])).toEqual([
      ['Bearer token-1', 'payload'],
      ['Bearer token-2', 'payload'],
    ]);
  });
});
