import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { homedir, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CredentialsFile, defaultCredentialsPath, readCredentials, writeCredentials, type SavedLogin } from '../src/credentials-file.ts';
import { withFileLock } from '../src/file-lock.ts';

const login = (issuer: string): SavedLogin => ({ issuer, clientId: 'tessera-cli', refreshToken: 'rt', accessToken: 'at', expiresAt: '2030-01-01T00:00:00.000Z', scope: 'read' });

/** Runs an ES module in a child node process (Node runs the TypeScript sources directly). */
function runModule(source: string): Promise<number | null> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', resolveRun);
  });
}

describe('the credentials file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-credentials-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('lives in $XDG_CONFIG_HOME/tessera, or ~/.config/tessera when it is unset or relative', () => {
    expect(defaultCredentialsPath({ XDG_CONFIG_HOME: '/srv/config' })).toBe('/srv/config/tessera/credentials.json');
    expect(defaultCredentialsPath({ XDG_CONFIG_HOME: 'relative/config' })).toBe(join(homedir(), '.config', 'tessera', 'credentials.json'));
    expect(defaultCredentialsPath({})).toBe(join(homedir(), '.config', 'tessera', 'credentials.json'));
  });

  it('is written atomically with mode 0600 in a directory created with mode 0700, and read back', async () => {
    const path = join(dir, 'config', 'tessera', 'credentials.json');
    expect(await readCredentials(path)).toEqual({ profiles: {} });
    await writeCredentials(path, { profiles: { default: login('https://a.example') } });
    expect((await stat(join(dir, 'config', 'tessera'))).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readCredentials(path)).toEqual({ profiles: { default: login('https://a.example') } });

    // A file someone widened is replaced by a new 0600 one, not rewritten in place.
    await chmod(path, 0o644);
    await writeCredentials(path, { profiles: { default: login('https://b.example') } });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readCredentials(path)).profiles.default!.issuer).toBe('https://b.example');
    expect(await readdir(join(dir, 'config', 'tessera'))).toEqual(['credentials.json']);

    await writeCredentials(path, { profiles: {} });
    expect(await readdir(join(dir, 'config', 'tessera'))).toEqual([]);
  });

  it('keeps members it does not know, and refuses a damaged file with a plain message', async () => {
    const path = join(dir, 'credentials.json');
    await writeFile(path, JSON.stringify({ profiles: { default: { ...login('https://a.example'), note: 'mine' } }, other: 1 }));
    const file = new CredentialsFile(path);
    await file.update('second', async () => ({ profile: login('https://b.example'), result: undefined }));
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ profiles: { default: { ...login('https://a.example'), note: 'mine' }, second: login('https://b.example') }, other: 1 });

    await writeFile(path, '{"profiles": ');
    await expect(readCredentials(path)).rejects.toMatchObject({ code: 'credentials_file', message: `${path} is not valid JSON: repair it, or delete it and log in again` });
    await writeFile(path, JSON.stringify({ profiles: { default: { issuer: 'x' } } }));
    await expect(readCredentials(path)).rejects.toThrow(/is not a Tessera credentials file \(profiles\.default\.clientId: /);
  });

  it('applies concurrent updates of different profiles one after the other', async () => {
    const file = new CredentialsFile(join(dir, 'credentials.json'));
    await Promise.all(['a', 'b', 'c', 'd'].map((name) => file.update(name, async () => ({ profile: login(`https://${name}.example`), result: undefined }))));
    expect(Object.keys((await file.read()).profiles).sort()).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('the file lock', () => {
  let dir: string;
  let lock: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-lock-'));
    lock = join(dir, 'credentials.json.lock');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('lets one process at a time through: four processes incrementing a counter lose no update', async () => {
    const counter = join(dir, 'counter');
    await writeFile(counter, '0');
    const source = `
      import { readFile, writeFile } from 'node:fs/promises';
      import { withFileLock } from ${JSON.stringify(resolve(import.meta.dirname, '../src/file-lock.ts'))};
      for (let i = 0; i < 25; i++) {
        await withFileLock(${JSON.stringify(lock)}, async () => {
          const n = Number(await readFile(${JSON.stringify(counter)}, 'utf8'));
          await new Promise((wake) => setTimeout(wake, 1));
          await writeFile(${JSON.stringify(counter)}, String(n + 1));
        });
      }`;
    expect(await Promise.all([1, 2, 3, 4].map(() => runModule(source)))).toEqual([0, 0, 0, 0]);
    expect(await readFile(counter, 'utf8')).toBe('100');
    expect(await readdir(dir)).toEqual(['counter']);
  }, 30_000);

  it('takes over the lock of a process that has died', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolveExit) => dead.on('close', resolveExit));
    await writeFile(lock, JSON.stringify({ pid: dead.pid, host: hostname(), nonce: 'n', createdAt: new Date().toISOString() }));
    const started = Date.now();
    expect(await withFileLock(lock, async () => 'ran', { timeoutMs: 5000 })).toBe('ran');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over a lock not touched for longer than staleMs, even of a live process', async () => {
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'n', createdAt: new Date(0).toISOString() }));
    const old = new Date(Date.now() - 31_000);
    await utimes(lock, old, old);
    expect(await withFileLock(lock, async () => 'ran', { timeoutMs: 5000 })).toBe('ran');
  });

  it('waits for a live lock, and gives up after timeoutMs saying who holds it', async () => {
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'n', createdAt: '2030-01-01T00:00:00.000Z' }));
    await expect(withFileLock(lock, async () => 'ran', { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'credentials_file',
      message: expect.stringMatching(new RegExp(`gave up waiting for the lock .* it is held by process ${process.pid} on .* since 2030-01-01T00:00:00.000Z`)),
    });
    expect(JSON.parse(await readFile(lock, 'utf8')).nonce).toBe('n');
  });

  it('is let go when the task fails, and creates its directory', async () => {
    const nested = join(dir, 'a', 'b', 'credentials.json.lock');
    await expect(withFileLock(nested, async () => Promise.reject(new Error('task failed')))).rejects.toThrow('task failed');
    expect(await readdir(join(dir, 'a', 'b'))).toEqual([]);
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o700);
  });
});
