import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../shared/logger.ts';
import { dataDirectory } from './load.ts';
import type { Config } from './schema.ts';

export interface ResolvedSecrets {
  /** Encrypts signing keys at rest (see src/oauth/signing-keys.ts). */
  keyEncryptionSecret: string;
  /** Sign cookies, newest first. */
  cookieKeys: string[];
}

/** Where generated secrets are kept, inside the data directory. */
export const SECRETS_FILE_NAME = 'secrets.json';

/** The shortest secret the configuration accepts (src/config/schema.ts); generated ones are longer. */
const MIN_SECRET_LENGTH = 32;

/** 32 random bytes, base64url: 43 characters, 256 bits. */
function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

function isSecret(value: unknown): value is string {
  return typeof value === 'string' && value.length >= MIN_SECRET_LENGTH;
}

/** Reads secrets.json; null when it does not exist. A damaged file is an error, never regenerated. */
async function readSecretsFile(file: string): Promise<ResolvedSecrets | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read the generated secrets in ${file}: ${(error as Error).message}`, { cause: error });
  }
  // Never quote the file's content in an error: it is made of secrets.
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const candidate = parsed as Partial<Record<keyof ResolvedSecrets, unknown>> | null;
  if (
    !candidate ||
    typeof candidate !== 'object' ||
    !isSecret(candidate.keyEncryptionSecret) ||
    !Array.isArray(candidate.cookieKeys) ||
    candidate.cookieKeys.length === 0 ||
    !candidate.cookieKeys.every(isSecret)
  ) {
    throw new Error(
      `${file} is damaged (expected {"keyEncryptionSecret": "...", "cookieKeys": ["..."]}). ` +
        'Restore it from a backup, or set TESSERA_KEY_SECRET and TESSERA_COOKIE_KEYS. Deleting it makes the stored signing keys unreadable.',
    );
  }
  return { keyEncryptionSecret: candidate.keyEncryptionSecret, cookieKeys: candidate.cookieKeys as string[] };
}

/**
 * Writes secrets.json atomically and only if it does not exist yet: the content goes to a private
 * temporary file (mode 0600, flushed) that is then hard-linked into place. link() fails when the
 * name is taken, so of two processes starting together on one data directory exactly one wins and
 * the other reads the winner's secrets. Returns what is in the file afterwards.
 */
async function createSecretsFile(directory: string, file: string, secrets: ResolvedSecrets): Promise<{ secrets: ResolvedSecrets; created: boolean }> {
  const temporary = join(directory, `.${SECRETS_FILE_NAME}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(secrets, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  let created = true;
  try {
    try {
      await link(temporary, file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') created = false;
      // File systems without hard links: rename is still atomic, only not exclusive.
      else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') await rename(temporary, file);
      else throw error;
    }
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  await syncDirectory(directory);
  if (created) return { secrets, created };
  const existing = await readSecretsFile(file);
  if (!existing) throw new Error(`${file} disappeared while it was being created`);
  return { secrets: existing, created };
}

/** Makes the new directory entry durable; best effort (not every platform can open a directory). */
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability of the entry is a bonus; the content itself was flushed before linking.
  }
}

/**
 * The secrets Tessera runs with. Configured values (TESSERA_KEY_SECRET, TESSERA_COOKIE_KEYS) win.
 * Without them — only possible with an http issuer, the schema refuses it for https — strong random
 * values are generated once, kept in `<dataDir>/secrets.json` (directory 0700, file 0600) and reused
 * at every later start, with one loud warning per start. The values themselves are never logged.
 */
export async function resolveSecrets(config: Config, logger: Logger): Promise<ResolvedSecrets> {
  const configuredKey = config.secrets.keyEncryptionSecret;
  const configuredCookies = config.secrets.cookieKeys;
  if (configuredKey !== null && configuredCookies !== null) {
    return { keyEncryptionSecret: configuredKey, cookieKeys: [...configuredCookies] };
  }

  const directory = dataDirectory(config);
  const file = join(directory, SECRETS_FILE_NAME);
  await mkdir(directory, { recursive: true, mode: 0o700 });

  let stored = await readSecretsFile(file);
  let created = false;
  if (!stored) {
    ({ secrets: stored, created } = await createSecretsFile(directory, file, { keyEncryptionSecret: generateSecret(), cookieKeys: [generateSecret()] }));
  } else if (process.platform !== 'win32' && ((await stat(file)).mode & 0o077) !== 0) {
    logger.warn({ file }, `${file} can be read by other users of this machine; restrict it with: chmod 600 ${file}`);
  }

  const generated = [
    ...(configuredKey === null ? ['TESSERA_KEY_SECRET'] : []),
    ...(configuredCookies === null ? ['TESSERA_COOKIE_KEYS'] : []),
  ];
  logger.warn(
    { file, generated, created },
    `USING GENERATED SECRETS (${generated.join(', ')}) ${created ? 'just created in' : 'from'} ${file}. ` +
      'They suit one machine only: to run several Tessera nodes, set TESSERA_KEY_SECRET and TESSERA_COOKIE_KEYS to the same values on every node ' +
      '(copy them from this file to keep the stored signing keys readable). Keep this file with the database: without it the signing keys cannot be decrypted.',
  );
  return {
    keyEncryptionSecret: configuredKey ?? stored.keyEncryptionSecret,
    cookieKeys: configuredCookies ? [...configuredCookies] : [...stored.cookieKeys],
  };
}
