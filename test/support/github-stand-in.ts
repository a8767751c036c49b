import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// GitHub's OAuth 2 sign-in as GitHub documents it (docs.github.com, "Authorizing OAuth apps"),
// for the tests, since github.com is not reachable from them: the authorize endpoint (here the
// person has authorized the app before, so it redirects straight back with a code), the token
// endpoint (client secret in the body, PKCE S256, JSON when asked with Accept), and the REST API's
// /user and /user/emails for the token. Nothing else of GitHub.

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  /** The public profile e-mail (often null); the verified ones come from /user/emails. */
  email: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

export interface GitHubStandIn {
  base: string;
  close(): Promise<void>;
}

export async function startGitHubStandIn(client: { clientId: string; clientSecret: string; redirectUri: string }, user: GitHubUser): Promise<GitHubStandIn> {
  const codes = new Map<string, { challenge: string; redirectUri: string }>();
  const tokens = new Set<string>();
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const redirectUri = url.searchParams.get('redirect_uri') ?? '';
      if (url.searchParams.get('client_id') !== client.clientId || redirectUri !== client.redirectUri) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('The redirect_uri MUST match the registered callback URL for this application.');
        return;
      }
      const code = randomBytes(10).toString('hex');
      codes.set(code, { challenge: url.searchParams.get('code_challenge') ?? '', redirectUri });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const issued = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        // GitHub answers errors with 200 and an error body; the JSON form is the same.
        if (form.get('client_id') !== client.clientId || form.get('client_secret') !== client.clientSecret) return json(res, 200, { error: 'incorrect_client_credentials' });
        if (!issued || issued.redirectUri !== form.get('redirect_uri') || createHash('sha256').update(verifier).digest('base64url') !== issued.challenge) return json(res, 200, { error: 'bad_verification_code' });
        const token = `gho_${randomBytes(18).toString('hex')}`;
        tokens.add(token);
        json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
      });
      return;
    }
    const token = (req.headers.authorization ?? '').replace(/^(Bearer|token) /i, '');
    if (req.method === 'GET' && (url.pathname === '/user' || url.pathname === '/user/emails')) {
      if (!tokens.has(token)) return json(res, 401, { message: 'Bad credentials' });
      const { emails, ...profile } = user;
      return json(res, 200, url.pathname === '/user' ? profile : emails);
    }
    json(res, 404, { message: 'Not Found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://localhost:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
