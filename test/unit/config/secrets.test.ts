import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { loadConfig } from '../../../src/config/load.ts';
import { resolveSecrets, SECRETS_FILE_NAME } from '../../../src/config/secrets.ts';
import { createLogger } from '../../../src/shared/logger.ts';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger whose lines are kept, to check what reaches the log. */
function capturingLogger() {
  const lines: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void lines.push(line) };
  return { logger: createLogger({ level: 'info', destination }), lines, parsed: () => lines.map((line) => JSON.parse(line) as LogLine) };
}

const CONFIGURED_KEY = 'a configured key encryption secret, long enough';
const CONFIGURED_COOKIE = 'a configured cookie signing key that is long enough';

describe('resolveSecrets', () => {
  let root: string;
  let dataDir: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tessera-secrets-'));
    dataDir = join(root, 'var', 'db');
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('generates secrets once, keeps them in a 0600 file in a 0700 directory, and reuses them', async () => {
    const config = loadConfig({ env: { TESSERA_DATA_DIR: dataDir } });
    const first = capturingLogger();
    const generated = await resolveSecrets(config, first.logger);

    expect(generated.keyEncryptionSecret).toMatch(/^[\w-]{43}$/);
    expect(generated.cookieKeys).toEqual([expect.stringMatching(/^[\w-]{43}$/)]);
    expect(generated.cookieKeys[0]).not.toBe(generated.keyEncryptionSecret);

    const file = join(dataDir, SECRETS_FILE_NAME);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(generated);
    expect(await readdir(dataDir)).toEqual([SECRETS_FILE_NAME]);

    const second = capturingLogger();
    const before = await stat(file);
    expect(await resolveSecrets(config, second.logger)).toEqual(generated);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
    expect(await readdir(dataDir)).toEqual([SECRETS_FILE_NAME]);
  });

  it('warns loudly, once, without the secrets', async () => {
    const config = loadConfig({ env: { TESSERA_DATA_DIR: dataDir } });
    const { logger, lines, parsed } = capturingLogger();
    const secrets = await resolveSecrets(config, logger);

    expect(parsed()).toHaveLength(1);
    const [warning] = parsed();
    expect(warning!.level).toBe(40);
    expect(warning!.msg).toMatch(/^USING GENERATED SECRETS \(TESSERA_KEY_SECRET, TESSERA_COOKIE_KEYS\)/);
    expect(warning!.msg).toMatch(/one machine only/);
    expect(warning!.msg).toMatch(/set TESSERA_KEY_SECRET and TESSERA_COOKIE_KEYS/);
    expect(warning!.file).toBe(join(dataDir, SECRETS_FILE_NAME));
    for (const secret of [secrets.keyEncryptionSecret, ...secrets.cookieKeys]) expect(lines.join('')).not.toContain(secret);
  });

  it('lets configured values win, and then touches no file and logs nothing', async () => {
    const config = loadConfig({ env: { TESSERA_DATA_DIR: dataDir, TESSERA_KEY_SECRET: CONFIGURED_KEY, TESSERA_COOKIE_KEYS: CONFIGURED_COOKIE } });
    const { logger, lines } = capturingLogger();
    expect(await resolveSecrets(config, logger)).toEqual({ keyEncryptionSecret: CONFIGURED_KEY, cookieKeys: [CONFIGURED_COOKIE] });
    expect(lines).toEqual([]);
    await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('prefers a configured value over a stored one, and generates only what is missing', async () => {
    const stored = await resolveSecrets(loadConfig({ env: { TESSERA_DATA_DIR: dataDir } }), capturingLogger().logger);
    const config = loadConfig({ env: { TESSERA_DATA_DIR: dataDir, TESSERA_KEY_SECRET: CONFIGURED_KEY } });
    const { logger, lines, parsed } = capturingLogger();

    expect(await resolveSecrets(config, logger)).toEqual({ keyEncryptionSecret: CONFIGURED_KEY, cookieKeys: stored.cookieKeys });
    expect(parsed().map((line) => line.generated)).toEqual([['TESSERA_COOKIE_KEYS']]);
    for (const secret of [CONFIGURED_KEY, stored.keyEncryptionSecret, ...stored.cookieKeys]) expect(lines.join('')).not.toContain(secret);
  });

  it('gives every concurrent caller the same secrets', async () => {
    const config = loadConfig({ env: { TESSERA_DATA_DIR: dataDir } });
    const results = await Promise.all(Array.from({ length: 8 }, () => resolveSecrets(config, capturingLogger().logger)));
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(JSON.parse(await readFile(join(dataDir, SECRETS_FILE_NAME), 'utf8'))).toEqual(results[0]);
    expect(await readdir(dataDir)).toEqual([SECRETS_FILE_NAME]);
  });

  it('refuses a damaged file rather than replacing it, without quoting it', async () => {
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, SECRETS_FILE_NAME);
    const damaged = '{"keyEncryptionSecret": "too short but secret", "cookieKeys": []}';
    await writeFile(file, damaged, { mode: 0o600 });
    const config = loadConfig({ env: { TESSERA_DATA_DIR: dataDir } });
    const attempt = resolveSecrets(config, capturingLogger().logger);
    await expect(attempt).rejects.toThrow(`${file} is damaged`);
    await expect(attempt).rejects.not.toThrow(/too short but secret/);
    expect(await readFile(file, 'utf8')).toBe(damaged);
  });

  it('warns when the stored file can be read by other users', async () => {
    const config = loadConfig({ env: { TESSERA_DATA_DIR: dataDir } });
    await resolveSecrets(config, capturingLogger().logger);
    await chmod(join(dataDir, SECRETS_FILE_NAME), 0o644);
    const { logger, parsed } = capturingLogger();
    await resolveSecrets(config, logger);
    expect(parsed().map((line) => line.msg)).toEqual([expect.stringMatching(/can be read by other users.*chmod 600/), expect.stringMatching(/^USING GENERATED SECRETS/)]);
  });
});
