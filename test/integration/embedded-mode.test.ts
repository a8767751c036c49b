import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess } from '../support/server-process.ts';

// `npm start` with nothing configured: PGlite in ./var/db, the in-process ephemeral store.
describe('embedded mode: the server with nothing configured', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-embedded-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts on PGlite and the in-process store, prints the admin password once, and stops cleanly', async () => {
    const server = await startServerProcess({}, { cwd: dir });
    try {
      expect(server.stdout()).toMatch(/REDIS_URL is not set/);
      expect(server.stdout()).toMatch(/using the embedded database \(PGlite\)/);
      const printed = /Created the first account "admin" with the password:\s+(\S+)/.exec(server.stderr());
      expect(printed).not.toBeNull();
      // Advice that works as written: the CLI cannot open the embedded database beside the server.
      expect(server.stderr()).toMatch(/Change it with: npx tessera user passwd admin\s+once this server is stopped/);
      // The password is on the console once, never in the JSON log.
      expect(server.stdout()).not.toContain(printed![1]!);
      expect((await stat(join(dir, 'var', 'db', 'pgdata'))).isDirectory()).toBe(true);

      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { database: { status: 'up', kind: 'pglite' }, ephemeral: { status: 'up', kind: 'memory' } } });
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(server.stdout()).toMatch(/"msg":"Tessera stopped"/);

    // The second start finds the account and the data: nothing is printed again.
    const again = await startServerProcess({}, { cwd: dir });
    try {
      expect(again.stderr()).not.toMatch(/Created the first account/);
      expect((await fetch(`${again.url}/healthz`)).status).toBe(200);
    } finally {
      expect(await again.stop()).toBe(0);
    }
    // Two starts on a new PGlite database (one creating it and migrating) are heavy on a busy machine.
  }, 60_000);

  it('refuses a second process on the same data directory with a clear message', async () => {
    const server = await startServerProcess({}, { cwd: dir });
    try {
      await expect(startServerProcess({}, { cwd: dir })).rejects.toThrow(/in use by process \d+/);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('stops with exit code 78 and names the key when the configuration is invalid', async () => {
    await expect(startServerProcess({ PORT: 'http' }, { cwd: dir })).rejects.toThrow(/exited with 78[\s\S]*PORT \(http\.port\)/);
  });
});
