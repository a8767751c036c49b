import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { TesseraClientError } from './errors.ts';
import { withFileLock, type FileLockOptions } from './file-lock.ts';
import { nullable, object, optional, parse, recordOf, ShapeError, string, type Reader } from './shape.ts';
import type { DpopPrivateJwk } from './dpop.ts';

/** One saved login. Tokens are null once the server has refused them (log in again). */
export interface SavedLogin {
  issuer: string;
  clientId: string;
  refreshToken: string | null;
  accessToken: string | null;
  /** ISO 8601; null when unknown. */
  expiresAt: string | null;
  /** The granted scopes, space-separated. */
  scope: string;
  /** `DPoP` when the tokens are bound to `dpopKey` (RFC 9449); absent in logins saved before DPoP (bearer tokens). */
  tokenType?: 'Bearer' | 'DPoP';
  /** The login's DPoP private key (a P-256 JWK), kept in this file with the tokens it binds. */
  dpopKey?: DpopPrivateJwk;
  /** Members a newer version wrote are kept as they are. */
  [member: string]: unknown;
}

export interface Credentials {
  profiles: Record<string, SavedLogin>;
  [member: string]: unknown;
}

const tokenType: Reader<'Bearer' | 'DPoP'> = (value, path) => {
  if (value !== 'Bearer' && value !== 'DPoP') throw new ShapeError(path, 'must be "Bearer" or "DPoP"');
  return value;
};
/** The key's shape is checked where it is used (DpopKey.fromJwk). */
const jwk: Reader<DpopPrivateJwk> = (value, path) => {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ShapeError(path, 'must be a JWK');
  return value as DpopPrivateJwk;
};

const readSavedLogin = object<SavedLogin>(
  {
    issuer: string(),
    clientId: string(),
    refreshToken: nullable(string()),
    accessToken: nullable(string()),
    expiresAt: nullable(string()),
    scope: string(),
    tokenType: optional(tokenType),
    dpopKey: optional(jwk),
  },
  { keepUnknown: true },
);
const readCredentialsFile = object<Credentials>({ profiles: recordOf(readSavedLogin) }, { keepUnknown: true });

/** Profile names: letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** $XDG_CONFIG_HOME/tessera/credentials.json, or ~/.config/tessera/credentials.json (a relative XDG_CONFIG_HOME is ignored, as the spec says). */
export function defaultCredentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const configHome = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(configHome, 'tessera', 'credentials.json');
}

/** The saved logins; none when the file does not exist. */
export async function readCredentials(path: string): Promise<Credentials> {
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw new TesseraClientError('credentials_file', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TesseraClientError('credentials_file', `${path} is not valid JSON: repair it, or delete it and log in again`);
  }
  const parsed = parse(readCredentialsFile, value);
  if (!parsed.success) {
    const issue = parsed.error;
    throw new TesseraClientError('credentials_file', `${path} is not a Tessera credentials file (${issue.path.join('.') || 'top level'}: ${issue.message}): repair it, or delete it and log in again`);
  }
  return parsed.data;
}

/**
 * Replaces the file atomically: the new content goes to a temporary file in the same directory
 * (mode 0600), is flushed to disk, and is renamed over the old one, so a reader sees the old file
 * or the new one, never half of one. The directory is created with mode 0700. With no profile
 * left, the file is deleted.
 */
export async function writeCredentials(path: string, credentials: Credentials): Promise<void> {
  const directory = dirname(path);
  try {
    if (Object.keys(credentials.profiles).length === 0) {
      await unlink(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      return;
    }
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const temporary = join(directory, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(credentials, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    // The rename itself survives a crash only once the directory is flushed too.
    const dir = await open(directory, 'r');
    try {
      await dir.sync();
    } catch {
      // Some file systems cannot fsync a directory; the rename is still atomic.
    } finally {
      await dir.close();
    }
  } catch (error) {
    if (error instanceof TesseraClientError) throw error;
    throw new TesseraClientError('credentials_file', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** The credentials file of one set of profiles, and its lock (`<file>.lock` beside it). */
export class CredentialsFile {
  readonly path: string;
  readonly #lock: FileLockOptions;

  constructor(path: string = defaultCredentialsPath(), lock: FileLockOptions = {}) {
    this.path = path;
    this.#lock = lock;
  }

  get lockPath(): string {
    return `${this.path}.lock`;
  }

  /** Reads without the lock: every write is an atomic rename, so a read is always whole. */
  read(): Promise<Credentials> {
    return readCredentials(this.path);
  }

  async profile(name: string): Promise<SavedLogin | undefined> {
    return (await this.read()).profiles[name];
  }

  /**
   * Read, change, write, all under the lock: `change` gets the current file and returns the
   * profile's new value (undefined deletes it) and a result for the caller.
   */
  update<T>(name: string, change: (current: SavedLogin | undefined) => Promise<{ profile: SavedLogin | undefined; result: T }>): Promise<T> {
    return withFileLock(
      this.lockPath,
      async () => {
        const credentials = await this.read();
        const current = credentials.profiles[name];
        const { profile, result } = await change(current);
        if (profile !== current) {
          if (profile) credentials.profiles[name] = profile;
          else delete credentials.profiles[name];
          await writeCredentials(this.path, credentials);
        }
        return result;
      },
      this.#lock,
    );
  }
}
