import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Validator } from '@seriousme/openapi-schema-validator';
import { answerChecker, documentedFetch, UndocumentedAnswerError } from '../support/documented-answers.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// /openapi.json, the description of the JSON API: an independent validator accepts it, it names
// every route Tessera serves (but the OAuth endpoints, which the issuer metadata describes, and
// the browser's pages), and a client generated from it by a real generator (openapi-typescript,
// with openapi-fetch) type-checks and manages personal tokens against a running Tessera.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The routes the document leaves out, and why. Any other route Tessera serves must be in it: a
 * route registered without a declaration (src/http/api-operation.ts) fails the inventory test.
 */
const NOT_IN_THE_DOCUMENT: Readonly<Record<string, string>> = {
  '/.well-known/openid-configuration': 'OAuth: the issuer metadata describes itself',
  '/.well-known/oauth-authorization-server': 'OAuth: the issuer metadata (RFC 8414)',
  '/.well-known/jwks.json': 'OAuth: named by the issuer metadata (jwks_uri)',
  '/oauth/token': 'OAuth: token_endpoint in the issuer metadata',
  '/oauth/introspect': 'OAuth: introspection_endpoint (its RFC 9701 JWT answers: introspection_signing_alg_values_supported)',
  '/oauth/revoke': 'OAuth: revocation_endpoint',
  '/oauth/device/code': 'OAuth: device_authorization_endpoint',
  '/oauth/userinfo': 'OAuth: userinfo_endpoint',
  '/oauth/authorize': 'OAuth: authorization_endpoint (a browser flow)',
  '/oauth/authorize/:uid': 'OAuth: the authorization flow, in the browser',
  '/device': 'OAuth: the device flow page where a person enters the code',
  '/device/:uid': 'OAuth: the device flow, in the browser',
  '/interaction/:uid': "OAuth: the flows' sign-in and consent pages",
  '/assets/tessera.css': "the pages' stylesheet",
  '/assets/copy.js': "the pages' one script (the Copy button)",
  '/assets/brand.css': "the operator's colours over the pages' stylesheet",
  '/': 'the start page',
  '/login': 'a browser page (its form posts here)',
  '/settings': 'a browser page (redirects to /settings/tokens)',
  '/settings/tokens': 'a browser page and its form',
  '/settings/tokens/:id/revoke': 'a browser page and its form',
  '/settings/tokens/created': 'a browser page: the new token, shown once',
  '/settings/security': 'a browser page',
  '/login/:id': 'sign-in through an upstream identity provider: a redirect to it',
  '/interaction/:uid/login/:id': "the same, from an OAuth flow's sign-in page",
  '/login/:id/callback': 'the redirect URI registered at an upstream identity provider (a browser page)',
  '/settings/sign-in': 'a browser page (linked identity providers)',
  '/settings/sign-in/link/:id': 'a redirect to an identity provider, to link it',
  '/settings/sign-in/unlink': "a browser page's form",
  '/settings/logins': 'a browser page (its data: /api/v1/logins, /api/v1/sessions)',
  '/settings/logins/:handle/revoke': "a browser page's form",
  '/settings/sessions/:id/end': "a browser page's form",
  '/settings/signins/:handle/end': "a browser page's form",
  '/settings/password': 'a browser page and its form',
  '/admin': 'the admin console (a browser page)',
  '/admin/users': 'the admin console: a page and its form',
  '/admin/users/:id': 'the admin console: a page',
  '/admin/users/:id/disable': "the admin console: a page's form",
  '/admin/users/:id/enable': "the admin console: a page's form",
  '/admin/users/:id/unlock': "the admin console: a page's form",
  '/admin/users/:id/email': "the admin console: a page's form",
  '/admin/users/:id/scopes': "the admin console: a page's form",
  '/admin/users/:id/password': "the admin console: a page's form",
  '/admin/users/:id/sign-out': 'the admin console: a confirmation page and its form',
  '/admin/users/:id/delete': 'the admin console: a confirmation page and its form',
  '/admin/clients': 'the admin console: a page and its form',
  '/admin/clients/:id': 'the admin console: a page',
  '/admin/clients/:id/introspection': "the admin console: a page's form",
  '/admin/clients/:id/jwks': "the admin console: a page's form",
  '/admin/clients/:id/token-exchange': "the admin console: a page's form",
  '/admin/clients/:id/rotate-secret': 'the admin console: a confirmation page and its form',
  '/admin/clients/:id/delete': 'the admin console: a confirmation page and its form',
  '/admin/keys': 'the admin console: a page',
  '/admin/identity-providers': 'the admin console: a page',
  '/admin/users/:id/identities': 'the admin console: a page',
  '/admin/users/:id/identities/remove': "the admin console: a page's form",
  '/admin/keys/rotate': "the admin console: a page's form",
  '/admin/audit': 'the admin console: a page',
  '/interaction/:uid/second-factor': "OAuth: the sign-in page's second step (its form posts here)",
  '/login/second-factor': 'a browser page: the second step of /login, and its form',
  '/login/second-factor/cancel': "a browser page's form (leaves the second step)",
  '/login/second-factor/enrol': 'a browser page: setting up a second factor during /login, and its form',
  '/settings/two-factor': 'a browser page',
  '/settings/two-factor/totp': "a browser page's form (starts setting up an app)",
  '/settings/two-factor/totp/confirm': "a browser page's form",
  '/settings/two-factor/totp/remove': "a browser page's form",
  '/settings/two-factor/recovery-codes': "a browser page's form",
  '/settings/two-factor/passkeys': "a browser page's form (the passkey script submits it)",
  '/settings/two-factor/passkeys/:id/remove': "a browser page's form",
  '/assets/passkeys.js': "the pages' passkey script",
};

interface Document {
  openapi: string;
  paths: Record<string, Record<string, { operationId: string; responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; name?: string; in?: string }> };
}

/** Runs a command (never blocking: the Tessera it talks to runs in this process); its exit status and output. */
function run(command: string, args: string[], cwd: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, encoding: 'utf8', timeout: 180_000 }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ status, output: `${stdout}${stderr}${error && status === null ? String(error) : ''}` });
    });
  });
}

describe('the OpenAPI document', () => {
  const suite = tesseraForSuite({ TESSERA_LEAKED_TOKENS: 'true', TESSERA_SESSION_HEADER_ALIASES: 'X-ArchivesSpace-Session', TESSERA_API_USER_HEADER: 'X-Pharos-API-User', TESSERA_API_KEY_HEADER: 'X-Pharos-API-Key' });
  let document: Document;

  beforeAll(async () => {
    const res = await fetch(`${suite.tessera.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    document = (await res.json()) as Document;
  });

  it('passes an independent OpenAPI 3.1 validator', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document) as unknown as Parameters<Validator['validate']>[0]);
    expect({ valid: result.valid, errors: result.errors }).toEqual({ valid: true, errors: undefined });
    expect(validator.version).toBe('3.1');
  });

  it('describes every route Tessera serves but the OAuth endpoints and the pages, and nothing it does not serve', () => {
    const served = suite.tessera.routes();
    const documented = new Set(Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`)));
    const servedOperations = new Set(served.flatMap(({ path, methods }) => methods.filter((method) => method !== 'HEAD').map((method) => `${method} ${path}`)));
    const undocumented = [...servedOperations].filter((operation) => !documented.has(operation) && !Object.hasOwn(NOT_IN_THE_DOCUMENT, operation.split(' ')[1]!));
    const notServed = [...documented].filter((operation) => !servedOperations.has(operation));
    const excusedButDocumented = [...documented].filter((operation) => Object.hasOwn(NOT_IN_THE_DOCUMENT, operation.split(' ')[1]!));
    const excusedButGone = Object.keys(NOT_IN_THE_DOCUMENT).filter((path) => !served.some((route) => route.path === path));
    expect({ undocumented, notServed, excusedButDocumented, excusedButGone }).toEqual({ undocumented: [], notServed: [], excusedButDocumented: [], excusedButGone: [] });
    // The families the issue names are all there.
    for (const path of ['/users/{username}/login', '/logout', '/api/v1/sessions', '/api/v1/sessions/{id}', '/api/v1/tokens', '/api/v1/tokens/{id}', '/api/v1/tokens/{id}/rotate', '/api/v1/me', '/auth/verify', '/healthz', '/readyz', '/api/v1/admin/users', '/api/v1/admin/clients/{id}/jwks', '/api/v1/admin/keys/rotate', '/api/v1/leaked-tokens/{reporter}']) {
      expect(document.paths).toHaveProperty([path]);
    }
  });

  it('has every operation declared in src/routes (a declaration never registered fails here)', async () => {
    const files = readdirSync(join(ROOT, 'src/routes'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
    const declared: string[] = [];
    for (const file of files) {
      const module = (await import(join(ROOT, 'src/routes', file))) as Record<string, unknown>;
      for (const value of Object.values(module)) {
        const operation = value as { operationId?: unknown; responses?: unknown; method?: unknown };
        if (typeof operation?.operationId === 'string' && typeof operation.method === 'string' && operation.responses) declared.push(operation.operationId);
      }
    }
    const inDocument = Object.values(document.paths).flatMap((item) => Object.values(item).map((operation) => operation.operationId));
    expect(declared.length).toBeGreaterThanOrEqual(14);
    expect(declared.filter((id) => !inDocument.includes(id))).toEqual([]);
    expect(new Set(inDocument).size).toBe(inDocument.length);
  });

  it('describes the credentials with the header names this node is configured with', () => {
    const schemes = document.components.securitySchemes;
    expect(schemes.sessionCookie).toMatchObject({ type: 'apiKey', in: 'cookie', name: 'tessera_session' });
    expect(schemes.sessionHeader).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Session' });
    expect(Object.values(schemes).map((scheme) => scheme.name)).toEqual(expect.arrayContaining(['x-archivesspace-session', 'x-pharos-api-user', 'x-pharos-api-key', 'X-CSRF-Token']));
    expect(schemes.sessionBearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(schemes.personalTokenBearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('describes the error body, and its checker refuses an undocumented status or a body that does not match', () => {
    expect(document.components.schemas.Error).toMatchObject({ required: ['message', 'status'] });
    const checker = answerChecker(document);
    const ok = JSON.stringify({ message: 'Sign in.', status: 401 });
    expect(() => checker.check('GET', '/api/v1/tokens', 401, 'application/json', ok)).not.toThrow();
    expect(() => checker.check('GET', '/api/v1/tokens', 418, 'application/json', ok)).toThrow(UndocumentedAnswerError);
    expect(() => checker.check('GET', '/api/v1/tokens', 401, 'application/json', JSON.stringify({ message: 'Sign in.' }))).toThrow(UndocumentedAnswerError);
    expect(() => checker.check('GET', '/api/v1/tokens', 200, 'application/json', JSON.stringify({ tokens: [{ id: 'x' }] }))).toThrow(UndocumentedAnswerError);
    expect(() => checker.check('DELETE', '/api/v1/tokens/abc', 204, null, '')).not.toThrow();
    // The OAuth endpoints are not the document's.
    expect(() => checker.check('POST', '/oauth/token', 418, 'application/json', '{}')).not.toThrow();
  });

  it('answers the unknown and the wrong method in the documented error body', async () => {
    const checked = documentedFetch(() => suite.tessera.url);
    expect((await checked(`${suite.tessera.url}/openapi.json`)).status).toBe(200);
    expect((await checked(`${suite.tessera.url}/docs/api`)).status).toBe(200);
    const wrong = await fetch(`${suite.tessera.url}/api/v1/me`, { method: 'PUT' });
    expect(wrong.status).toBe(405);
    const checker = answerChecker(document);
    // A 405 is not an operation's answer, but its body is the Error schema.
    const errorOnly = { paths: { '/x': { get: { responses: { '405': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } } } } }, components: document.components };
    const refusal = await wrong.text();
    expect(() => answerChecker(errorOnly).check('GET', '/x', 405, 'application/json', refusal)).not.toThrow();
    expect(checker.operationFor('GET', '/api/v1/tokens/abc/rotate')).toBeUndefined();
  });

  describe('a client generated from it', () => {
    let dir: string;
    beforeAll(() => {
      // The generated code imports openapi-fetch: the project's node_modules, linked in.
      dir = mkdtempSync(join(tmpdir(), 'tessera-openapi-client-'));
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('is generated by openapi-typescript, type-checks, and creates, lists, rotates and revokes a personal token', async () => {
      await suite.tessera.core.accounts.createUser({ username: 'scripter', email: 'scripter@example.org', password: 'scripter-password', scopes: ['read', 'deposit:write'] }, { actor: 'test' });

      // The generator reads the served document itself.
      const generated = await run(process.execPath, [join(ROOT, 'node_modules/openapi-typescript/bin/cli.js'), `${suite.tessera.url}/openapi.json`, '--output', join(dir, 'tessera-api.ts')], dir);
      expect(generated).toMatchObject({ status: 0 });
      expect(readFileSync(join(dir, 'tessera-api.ts'), 'utf8')).toContain('"/api/v1/tokens/{id}/rotate"');

      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
      writeFileSync(join(dir, 'client.ts'), CLIENT_SCRIPT);
      // Something the generated types must refuse: a misspelt field and a path that does not exist.
      writeFileSync(join(dir, 'misuse.ts'), MISUSE_SCRIPT);
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', allowImportingTsExtensions: true, skipLibCheck: true, types: ['node'], lib: ['es2023', 'dom'] },
        files: ['client.ts'],
      }));
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      const checked = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], dir);
      expect(checked).toEqual({ status: 0, output: '' });
      writeFileSync(join(dir, 'tsconfig.misuse.json'), JSON.stringify({ extends: './tsconfig.json', files: ['misuse.ts'] }));
      const refused = await run(process.execPath, [tsc, '-p', 'tsconfig.misuse.json'], dir);
      expect(refused.status).not.toBe(0);
      // One error on each of the three lines that misuse it (6, 7 and 9 of MISUSE_SCRIPT), and no other.
      const lines = [...refused.output.matchAll(/misuse\.ts\((\d+),\d+\): error/g)].map((match) => Number(match[1]));
      expect([...new Set(lines)]).toEqual([6, 7, 9]);
      expect(refused.output).toMatch(/misuse\.ts\(6,\d+\): error TS\d+: .*'nme'/);
      expect(refused.output).toMatch(/misuse\.ts\(9,\d+\): error TS\d+: Property 'token' does not exist/);

      // Node runs the checked client as it is (its types stripped), against this Tessera.
      const ran = await run(process.execPath, ['client.ts', suite.tessera.url, 'scripter', 'scripter-password'], dir);
      expect(ran).toMatchObject({ status: 0 });
      const report = JSON.parse(ran.output.trim().split('\n').at(-1)!) as Record<string, unknown>;
      expect(report).toMatchObject({
        created: { status: 201, name: 'generated client', scopes: ['read'] },
        listedNames: ['generated client'],
        rotated: { status: 201, name: 'generated client' },
        oldAfterRotation: 401,
        newBeforeRevocation: 200,
        revoked: 204,
        listedAfter: [{ revoked: true }, { revoked: true }],
        newAfterRevocation: 401,
      });
      const created = report.created as { id: string; token: string };
      const rotated = report.rotated as { id: string; token: string };
      expect(rotated.id).not.toBe(created.id);
      expect(created.token).toMatch(/^tsr_pat_/);
    }, 240_000);
  });
});

/** The generated client at work: log in, then create, list, rotate and revoke a personal token. */
const CLIENT_SCRIPT = `
import createClient from 'openapi-fetch';
import type { paths } from './tessera-api.ts';

const [baseUrl, username, password] = process.argv.slice(2) as [string, string, string];
const client = createClient<paths>({ baseUrl });

const login = await client.POST('/users/{username}/login', { params: { path: { username } }, body: { password } });
if (!login.data) throw new Error('login failed: ' + JSON.stringify(login.error));
const headers = { 'X-Session': login.data.session };

const created = await client.POST('/api/v1/tokens', { headers, body: { name: 'generated client', scopes: ['read'], expires_in_days: 7 } });
if (!created.data) throw new Error('create failed: ' + JSON.stringify(created.error));
const listed = await client.GET('/api/v1/tokens', { headers });
const listedNames: string[] = (listed.data?.tokens ?? []).map((token) => token.name);

const me = (token: string) => client.GET('/api/v1/me', { headers: { authorization: 'Bearer ' + token } }).then((answer) => answer.response.status);
const rotated = await client.POST('/api/v1/tokens/{id}/rotate', { headers, params: { path: { id: created.data.id } } });
if (!rotated.data) throw new Error('rotate failed: ' + JSON.stringify(rotated.error));
const oldAfterRotation = await me(created.data.token);
const newBeforeRevocation = await me(rotated.data.token);

const revoked = await client.DELETE('/api/v1/tokens/{id}', { headers, params: { path: { id: rotated.data.id } } });
if (revoked.error) throw new Error('revoke failed: ' + revoked.error.message);
const after = await client.GET('/api/v1/tokens', { headers });
const listedAfter = (after.data?.tokens ?? []).map((token) => ({ id: token.id, revoked: token.revoked }));

console.log(JSON.stringify({
  created: { status: created.response.status, id: created.data.id, name: created.data.name, scopes: created.data.scopes, token: created.data.token },
  listedNames,
  rotated: { status: rotated.response.status, id: rotated.data.id, name: rotated.data.name, token: rotated.data.token },
  oldAfterRotation,
  newBeforeRevocation,
  revoked: revoked.response.status,
  listedAfter,
  newAfterRevocation: await me(rotated.data.token),
}));
`;

/** What the generated types refuse. */
const MISUSE_SCRIPT = `
import createClient from 'openapi-fetch';
import type { paths } from './tessera-api.ts';

const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:1' });
await client.POST('/api/v1/tokens', { body: { nme: 'misspelt' } });
await client.GET('/api/v1/tokenz');
const listed = await client.GET('/api/v1/tokens');
const secret: string = listed.data!.tokens[0]!.token;
console.log(secret);
`;
