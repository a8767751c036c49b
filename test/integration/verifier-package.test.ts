import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// What a resource server gets: @tessera/verifier and @tessera/client packed with `npm pack` and
// installed from the tarballs into an empty project by npm itself (from its cache, or the
// registry), then the verifier, loaded from that project's node_modules, protecting an express
// route against a real Tessera whose credential header names are not the defaults and reach the
// verifier only through Tessera's discovery document.

const run = promisify(execFile);
/** The server's own dependencies: none of them may reach a resource server through the packages. */
const SERVER_ONLY = ['argon2', '@electric-sql/pglite', 'pg', 'ioredis', 'oidc-provider', 'zod', 'express', 'helmet', 'pino'];
const by = { actor: 'test' };

/** npm with the test's Node first on PATH (npm's scripts, e.g. prepack's tsc, run on it). */
async function npm(args: string[], cwd: string): Promise<string> {
  // Not the npm_* variables of the `npm test` this runs under: they would point npm at the checkout.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  const env = { ...inherited, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  const { stdout } = await run('npm', args, { cwd, env, maxBuffer: 32 * 1024 * 1024, timeout: 240_000 });
  return stdout;
}

/** `npm pack` of a workspace package (its prepack builds dist/): the tarball's path. */
async function pack(name: 'verifier' | 'client', destination: string): Promise<string> {
  const [packed] = JSON.parse(await npm(['pack', '--json', '--pack-destination', destination], resolve('packages', name))) as { filename: string; files: { path: string }[] }[];
  return join(destination, packed!.filename);
}

interface TreeNode {
  version?: string;
  dependencies?: Record<string, TreeNode>;
}

/**
 * Every installed package in `npm ls --all --json`, at any depth. An optional peer dependency that
 * is not installed is listed too, as an entry without a version: that one is not counted.
 */
function namesIn(tree: TreeNode): Set<string> {
  const names = new Set<string>();
  const walk = (node: TreeNode) => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      if (child.version === undefined) continue;
      names.add(name);
      walk(child);
    }
  };
  walk(tree);
  return names;
}

/** The packages on disk in a project's node_modules (scoped ones as @scope/name), at any depth. */
async function installedOnDisk(root: string): Promise<Set<string>> {
  const names = new Set<string>();
  async function scan(modules: string): Promise<void> {
    const entries = await readdir(modules, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const scoped = entry.name.startsWith('@');
      const packages = scoped ? (await readdir(join(modules, entry.name))).map((name) => `${entry.name}/${name}`) : [entry.name];
      for (const name of packages) {
        names.add(name);
        await scan(join(modules, name, 'node_modules'));
      }
    }
  }
  await scan(join(root, 'node_modules'));
  return names;
}

async function installedTree(project: string): Promise<{ tree: TreeNode; names: Set<string>; onDisk: Set<string> }> {
  const tree = JSON.parse(await npm(['ls', '--all', '--json'], project)) as TreeNode;
  return { tree, names: namesIn(tree), onDisk: await installedOnDisk(project) };
}

/** The resource server's code, as its README shows it, run from the project's own node_modules. */
const RECORDS_API = `
import express from 'express';
import { createTesseraVerifier } from '@tessera/verifier';

const tessera = createTesseraVerifier({
  issuer: process.env.ISSUER,
  clientId: 'records-api',
  clientSecret: process.env.CLIENT_SECRET,
  credentialHeaders: 'discovery',
  onUnavailable: (error) => console.error('tessera unavailable:', error.message),
});
const app = express();
app.get('/records', tessera.requireScopes('read'), (req, res) => res.json({ caller: req.tessera.username, source: req.tessera.source }));
const server = app.listen(0, '127.0.0.1', () => console.log('listening on ' + server.address().port));
`;

describe('@tessera/verifier and @tessera/client installed from their tarballs', () => {
  const prefix = uniqueRedisPrefix();
  let work: string;
  let project: string;
  let verifierTarball: string;
  let clientTarball: string;
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: string;
  let api: ChildProcess | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'tessera-packages-'));
    project = join(work, 'records-api');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'records-api', version: '1.0.0', private: true, type: 'module' }, null, 2));
    verifierTarball = await pack('verifier', work);
    clientTarball = await pack('client', work);
  }, 300_000);

  afterAll(async () => {
    api?.kill();
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ships built JavaScript and type declarations, and no sources or tests', async () => {
    for (const tarball of [verifierTarball, clientTarball]) {
      const { stdout } = await run('tar', ['-tzf', tarball]);
      const files = stdout.split('\n').filter(Boolean);
      expect(files).toEqual(expect.arrayContaining(['package/package.json', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts']));
      expect(files.filter((file) => !/^package\/(package\.json|README\.md|dist\/[\w-]+\.(js|d\.ts))$/.test(file))).toEqual([]);
    }
  });

  it('installs the verifier alone with jose as its one dependency: nothing of the server comes along', async () => {
    await npm(['install', '--prefer-offline', verifierTarball], project);
    const { tree, names, onDisk } = await installedTree(project);
    expect(Object.keys(tree.dependencies ?? {})).toEqual(['@tessera/verifier']);
    const verifierDependencies = tree.dependencies!['@tessera/verifier']!.dependencies ?? {};
    expect(Object.keys(verifierDependencies).filter((name) => verifierDependencies[name]!.version !== undefined)).toEqual(['jose']);
    // express and its types are optional peers: listed by npm, not installed.
    expect(Object.keys(verifierDependencies).sort()).toEqual(['@types/express', 'express', 'jose']);
    // jose depends on nothing: the whole tree is the verifier and jose, on disk as in npm's own listing.
    expect([...names].sort()).toEqual(['@tessera/verifier', 'jose']);
    expect([...onDisk].sort()).toEqual(['@tessera/verifier', 'jose']);
    for (const name of SERVER_ONLY) expect({ name, present: names.has(name) || onDisk.has(name) }).toEqual({ name, present: false });
  }, 300_000);

  it('installs the client with no dependency at all', async () => {
    await npm(['install', '--prefer-offline', clientTarball], project);
    const { tree, onDisk } = await installedTree(project);
    expect(tree.dependencies!['@tessera/client']!.dependencies ?? {}).toEqual({});
    expect([...onDisk].sort()).toEqual(['@tessera/client', '@tessera/verifier', 'jose']);
  }, 300_000);

  it('protects an express route against a running Tessera, with the header names from its discovery document', async () => {
    const expressVersion = (JSON.parse(await readFile(resolve('node_modules/express/package.json'), 'utf8')) as { version: string }).version;
    await npm(['install', '--prefer-offline', `express@${expressVersion}`], project);
    const { names } = await installedTree(project);
    for (const name of SERVER_ONLY.filter((name) => name !== 'express')) expect({ name, present: names.has(name) }).toEqual({ name, present: false });

    db = await createTestDatabase();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    tessera = await startTestTessera({
      PORT: String(port),
      ISSUER: issuer,
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_SESSION_HEADER_ALIASES: 'X-Repository-Session',
      TESSERA_API_KEY_HEADER: 'X-Repository-Key',
      TESSERA_API_USER_HEADER: 'X-Repository-User',
    });
    const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ tessera_session_header_aliases: ['x-repository-session'], tessera_api_key_header: 'x-repository-key', tessera_api_user_header: 'x-repository-user' });

    const secret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by)).secret!;
    await tessera.core.accounts.createUser({ username: 'curator', email: 'curator@example.org', password: 'curator-password', scopes: ['read'] }, by);
    const curator = (await tessera.core.accounts.findUser('curator'))!;
    const pat = (await tessera.core.personalTokens.create(curator, { name: 'scripts', scopes: ['read'] }, by)).token;
    const login = await fetch(`${issuer}/users/curator/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'curator-password' }) });
    const session = String(((await login.json()) as { session: string }).session);

    await writeFile(join(project, 'server.js'), RECORDS_API);
    const child = spawn(process.execPath, ['server.js'], { cwd: project, env: { PATH: process.env.PATH ?? '', ISSUER: issuer, CLIENT_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    api = child;
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const apiPort = await new Promise<string>((resolvePort, reject) => {
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /listening on (\d+)/.exec(stdout);
        if (match) resolvePort(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`the records API exited (${code}): ${stderr}`)));
    });
    const records = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${apiPort}/records`, { headers });

    const accepted: [Record<string, string>, string][] = [
      [{ 'x-repository-key': pat, 'x-repository-user': 'curator' }, 'api_key'],
      [{ 'x-repository-session': session }, 'session_header'],
      [{ authorization: `Bearer ${pat}` }, 'authorization'],
    ];
    for (const [headers, source] of accepted) {
      const answer = await records(headers);
      expect({ source, status: answer.status, body: await answer.json() }).toEqual({ source, status: 200, body: { caller: 'curator', source } });
      // Tessera's forward-auth reads the same names: the operator set them once, on Tessera.
      expect((await fetch(`${issuer}/auth/verify`, { headers })).status).toBe(200);
    }
    // The default names are not Tessera's any more, so the verifier does not look there either.
    for (const headers of [{ 'x-api-key': pat, 'x-api-user': 'curator' }, {}] as Record<string, string>[]) {
      const refused = await records(headers);
      expect(refused.status).toBe(401);
      expect(await refused.json()).toEqual({ message: 'Authentication required.', status: 401 });
    }
    expect(stderr).toBe('');
  }, 300_000);
});
