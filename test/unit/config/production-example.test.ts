import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig, redactConfig } from '../../../src/config/load.ts';

// config/production.example.json, as docs/production.md tells operators to use it: the file with
// its secrets given in the environment, or in files named by the *_FILE variables (Docker and
// Kubernetes secrets), and what the loader says when one of them is missing.

const EXAMPLE = resolve('config/production.example.json');
const KEY_SECRET = 'example-key-encryption-secret-0123456789abcdef';
const COOKIE_KEYS = ['example-cookie-key-newest-0123456789abcdefgh', 'example-cookie-key-older-0123456789abcdefghi'];
const DATABASE_URL = 'postgres://tessera:db-password-123@db.internal:5432/tessera';
const REDIS_URL = 'redis://:redis-password-456@redis.internal:6379';

/** The ConfigError loadConfig throws for `env`, or a failure when it loads. */
function refusal(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig({ env });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('config/production.example.json', () => {
  let dir: string;
  const files = { key: '', cookies: '', database: '', redis: '' };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-production-example-'));
    files.key = join(dir, 'key-secret');
    files.cookies = join(dir, 'cookie-keys');
    files.database = join(dir, 'database-url');
    files.redis = join(dir, 'redis-url');
    // As `openssl rand … > file` and editors write them: each ends with a new line.
    await writeFile(files.key, `${KEY_SECRET}\n`, { mode: 0o600 });
    await writeFile(files.cookies, `${COOKIE_KEYS.join('\n')}\n`, { mode: 0o600 });
    await writeFile(files.database, `${DATABASE_URL}\n`, { mode: 0o600 });
    await writeFile(files.redis, `${REDIS_URL}\r\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function expectProductionSettings(env: NodeJS.ProcessEnv) {
    const config = loadConfig({ env });
    expect(config.issuer).toBe('https://auth.example.org');
    expect(config.http.trustProxy).toBe('10.0.0.10');
    expect(config.http.workers).toBe('auto');
    expect(config.metrics).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(config.passwords.hashing.concurrency).toBe(1);
    expect(config.secrets).toEqual({ keyEncryptionSecret: KEY_SECRET, cookieKeys: COOKIE_KEYS, secondFactorKeys: null });
    expect(config.database.url).toBe(DATABASE_URL);
    expect(config.redis.url).toBe(REDIS_URL);
    return config;
  }

  it('loads with its secrets in the environment', () => {
    expectProductionSettings({ TESSERA_CONFIG: EXAMPLE, TESSERA_KEY_SECRET: KEY_SECRET, TESSERA_COOKIE_KEYS: COOKIE_KEYS.join(','), DATABASE_URL, REDIS_URL });
  });

  it('loads with its secrets in files named by the *_FILE variables, without their final new line', () => {
    const config = expectProductionSettings({
      TESSERA_CONFIG: EXAMPLE,
      TESSERA_KEY_SECRET_FILE: files.key,
      TESSERA_COOKIE_KEYS_FILE: files.cookies,
      DATABASE_URL_FILE: files.database,
      REDIS_URL_FILE: files.redis,
    });
    // Read from a file or not, a secret is still redacted.
    const printed = JSON.stringify(redactConfig(config));
    for (const secret of [KEY_SECRET, ...COOKIE_KEYS, 'db-password-123', 'redis-password-456']) expect(printed).not.toContain(secret);
  });

  it('takes the cookie keys from a file one per line or comma-separated', async () => {
    const commas = join(dir, 'cookie-keys-commas');
    await writeFile(commas, COOKIE_KEYS.join(', '));
    const config = loadConfig({ env: { TESSERA_CONFIG: EXAMPLE, TESSERA_KEY_SECRET: KEY_SECRET, TESSERA_COOKIE_KEYS_FILE: commas } });
    expect(config.secrets.cookieKeys).toEqual(COOKIE_KEYS);
  });

  it('is refused without either key secret, naming the one missing', () => {
    const withoutKey = refusal({ TESSERA_CONFIG: EXAMPLE, TESSERA_COOKIE_KEYS_FILE: files.cookies, DATABASE_URL, REDIS_URL });
    expect(withoutKey.problems).toEqual(['secrets.keyEncryptionSecret: is required when the issuer is https (generated secrets suit trials only)']);
    const withoutCookies = refusal({ TESSERA_CONFIG: EXAMPLE, TESSERA_KEY_SECRET_FILE: files.key, DATABASE_URL, REDIS_URL });
    expect(withoutCookies.problems).toEqual(['secrets.cookieKeys: is required when the issuer is https (generated secrets suit trials only)']);
  });

  it('refuses a secret file that cannot be read, or a secret given both ways, naming the variables and never the content', () => {
    const missing = join(dir, 'no-such-file');
    expect(refusal({ TESSERA_CONFIG: EXAMPLE, TESSERA_KEY_SECRET_FILE: missing, TESSERA_COOKIE_KEYS: COOKIE_KEYS[0] }).problems).toEqual([
      `TESSERA_KEY_SECRET_FILE: cannot read ${missing} (ENOENT)`,
    ]);
    const both = refusal({ TESSERA_CONFIG: EXAMPLE, TESSERA_KEY_SECRET: KEY_SECRET, TESSERA_KEY_SECRET_FILE: files.key, TESSERA_COOKIE_KEYS: COOKIE_KEYS[0] });
    expect(both.problems).toEqual(['TESSERA_KEY_SECRET_FILE: TESSERA_KEY_SECRET is set too; give the secret one way']);
    expect(both.message).not.toContain(KEY_SECRET);
  });

  it('checks a secret read from a file as one from the environment, naming the file variable', async () => {
    const short = join(dir, 'short-key');
    await writeFile(short, 'too-short-secret\n');
    const error = refusal({ TESSERA_CONFIG: EXAMPLE, TESSERA_KEY_SECRET_FILE: short, TESSERA_COOKIE_KEYS_FILE: files.cookies });
    expect(error.problems).toEqual(['TESSERA_KEY_SECRET_FILE (secrets.keyEncryptionSecret): must be at least 32 characters']);
    expect(error.message).not.toContain('too-short-secret');
  });

  it('has no _FILE variant for settings that are not secrets', () => {
    expect(refusal({ TESSERA_CONFIG: EXAMPLE, TESSERA_KEY_SECRET: KEY_SECRET, TESSERA_COOKIE_KEYS: COOKIE_KEYS[0], TESSERA_LOG_LEVEL_FILE: files.key }).problems[0]).toMatch(
      /^TESSERA_LOG_LEVEL_FILE: unknown setting \(known: .*TESSERA_KEY_SECRET_FILE, TESSERA_COOKIE_KEYS_FILE/,
    );
  });
});
