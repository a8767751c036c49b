import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

/** The warnings a Tessera logged that name its issuer. */
function issuerWarnings(tessera: TestTessera): { msg: string; tried: string; listening: string; reason?: string; status?: number }[] {
  return tessera.logs.lines
    .map((line) => JSON.parse(line) as { level: number; msg: string; tried: string; listening: string; issuer?: string })
    .filter((entry) => entry.level === 40 && entry.issuer !== undefined);
}

// At start, Tessera fetches its issuer's discovery document carrying a mark made for this start,
// which only this process answers with: it warns when the issuer leads nowhere or elsewhere.
describe('the start checks that ISSUER leads to this process', () => {
  let db: TestDatabase;
  const started: TestTessera[] = [];
  const servers: Server[] = [];
  const held: Socket[] = [];
  const start = async (env: Record<string, string>, options: { issuerCheckTimeoutMs?: number } = {}) => {
    const tessera = await startTestTessera({ DATABASE_URL: db.url, ...env }, {}, options);
    started.push(tessera);
    return tessera;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((tessera) => tessera.stop()));
    for (const socket of held.splice(0)) socket.destroy();
    for (const server of servers.splice(0)) server.close();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('says nothing when the issuer is this process (by name, as the default issuer is)', async () => {
    const port = await freePort();
    const tessera = await start({ PORT: String(port), ISSUER: `http://localhost:${port}` });
    await expect(tessera.issuerCheck).resolves.toEqual({ outcome: 'this-process' });
    expect(issuerWarnings(tessera)).toEqual([]);
  });

  it('warns, naming what it tried and what to set, when nothing listens at the issuer', async () => {
    const nowhere = await freePort();
    const tessera = await start({ ISSUER: `http://127.0.0.1:${nowhere}` });
    await expect(tessera.issuerCheck).resolves.toEqual({ outcome: 'unreachable', reason: 'ECONNREFUSED' });
    const [warning, ...more] = issuerWarnings(tessera);
    expect(more).toEqual([]);
    expect(warning).toMatchObject({ tried: `http://127.0.0.1:${nowhere}/.well-known/openid-configuration`, listening: tessera.url, reason: 'ECONNREFUSED' });
    expect(warning!.msg).toContain(`set ISSUER to the URL by which they reach this process (it listens on ${tessera.url})`);
  });

  it('warns when the issuer\'s name does not resolve', async () => {
    const tessera = await start({ ISSUER: 'http://tessera-issuer-check.invalid' });
    await expect(tessera.issuerCheck).resolves.toMatchObject({ outcome: 'unreachable' });
    expect(issuerWarnings(tessera)).toHaveLength(1);
  });

  it('warns when the issuer is another Tessera', async () => {
    const port = await freePort();
    const other = await start({ PORT: String(port), ISSUER: `http://127.0.0.1:${port}` });
    await expect(other.issuerCheck).resolves.toEqual({ outcome: 'this-process' });
    const tessera = await start({ ISSUER: other.url });
    await expect(tessera.issuerCheck).resolves.toEqual({ outcome: 'another-server', status: 200 });
    const [warning] = issuerWarnings(tessera);
    expect(warning).toMatchObject({ status: 200, listening: tessera.url });
    expect(warning!.msg).toContain('leads to another server');
    expect(issuerWarnings(other)).toEqual([]);
  });

  it('warns when the issuer is another HTTP server', async () => {
    const server = createHttpServer((_req, res) => res.end('{}'));
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const tessera = await start({ ISSUER: `http://127.0.0.1:${port}` });
    await expect(tessera.issuerCheck).resolves.toEqual({ outcome: 'another-server', status: 200 });
    expect(issuerWarnings(tessera)).toHaveLength(1);
  });

  /** An issuer that accepts connections and never answers. */
  async function silentIssuer(): Promise<{ issuer: string; connected: Promise<unknown> }> {
    const silent = createTcpServer((socket) => held.push(socket));
    servers.push(silent);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address() as { port: number };
    return { issuer: `http://127.0.0.1:${port}`, connected: once(silent, 'connection') };
  }

  it('does not delay the start, and ends with it, when the issuer never answers', async () => {
    const { issuer, connected } = await silentIssuer();
    const tessera = await start({ ISSUER: issuer }, { issuerCheckTimeoutMs: 600_000 });
    // Started and serving while its check still waits for an answer.
    expect((await fetch(`${tessera.url}/healthz`)).status).toBe(200);
    await connected;
    const pending = Symbol('pending');
    expect(await Promise.race([tessera.issuerCheck, Promise.resolve(pending)])).toBe(pending);
    await tessera.stop();
    await expect(tessera.issuerCheck).resolves.toEqual({ outcome: 'stopped' });
    expect(issuerWarnings(tessera)).toEqual([]);
  });

  it('gives up after its timeout and warns', async () => {
    const { issuer } = await silentIssuer();
    const tessera = await start({ ISSUER: issuer }, { issuerCheckTimeoutMs: 300 });
    await expect(tessera.issuerCheck).resolves.toEqual({ outcome: 'unreachable', reason: 'no answer within 300 ms' });
    expect(issuerWarnings(tessera)).toHaveLength(1);
  });
});
