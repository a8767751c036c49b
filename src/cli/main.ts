import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.ts';
import { AppError } from '../http/app-error.ts';
import { createLogger } from '../logger.ts';
import type { EphemeralStore } from '../store/ephemeral-store.ts';
import { openEphemeralStore } from '../store/open-stores.ts';
import { openCore } from '../tessera.ts';
import { migrateCommand, userCommand } from './admin-commands.ts';
import { clientCommand } from './client-commands.ts';
import { keysCommand } from './key-commands.ts';
import { LOGIN_COMMANDS, loginCommand } from './login-commands.ts';
import { UsageError } from './prompt.ts';

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** login, token, whoami: not logged in, or the saved login expired or was revoked (run `tessera login`). */
  loginRequired: 67,
  /** login, token, whoami, logout: the issuer cannot be reached. */
  issuerUnreachable: 69,
  /** login: the code expired before it was approved. */
  codeExpired: 75,
  /** login: the person denied the login in the browser. */
  accessDenied: 77,
  config: 78,
} as const;

const HELP = `tessera — administer a Tessera authorization service

Usage:
  tessera migrate                           apply pending database migrations
  tessera user create <username> [--email E] [--scopes S,...] [--password-stdin]
  tessera user passwd <username> [--password-stdin]
  tessera user disable <username>
  tessera user enable <username>
  tessera user scopes <username> <S,...>    set the scopes a user may be granted
  tessera user list [--limit N] [--offset N]
  tessera client create --kind device|service|resource_server|web --name NAME [--id ID]
                 [--scopes S,...] [--redirect-uri URI ...] [--default-resource R] [--access-token-ttl SECONDS]
                 [--jwks-file PATH]     public keys (a JWK Set or one JWK): private_key_jwt, no secret
  tessera client list | show <id> | delete <id> | rotate-secret <id>
  tessera client rotate-keys <id> --jwks-file PATH   replace the public keys of a private_key_jwt client
  tessera keys list                         signing keys, current first
  tessera keys rotate                       add a signing key; the old one stays published until its tokens expire
  tessera login [--issuer URL] [--client-id ID] [--scope S ...] [--profile NAME] [--open]
                                            log in from this terminal (device login) and save the login
  tessera token [--profile NAME]            print a valid access token, refreshed when it expires within 60 s
  tessera whoami [--profile NAME]           the saved login's subject, username, scopes and expiry
  tessera logout [--profile NAME]           revoke the saved login at the issuer and delete it
  tessera help | --help
  tessera version | --version

The database comes from the same configuration as the server (DATABASE_URL, or the embedded
database in TESSERA_DATA_DIR, default ./var/db). Passwords are read from a terminal without
echo, or from standard input with --password-stdin. login, token, whoami and logout need no
configuration: they talk to the issuer (--issuer or TESSERA_ISSUER) and keep the login in
$XDG_CONFIG_HOME/tessera/credentials.json (default ~/.config/tessera/credentials.json).

Exit codes: 0 success, 1 failure, 2 wrong usage, 78 invalid configuration.
login, token, whoami, logout: 67 not logged in or login expired/revoked (run \`tessera login\`),
69 issuer unreachable, 75 code expired, 77 access denied.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function describeFailure(error: unknown): string {
  if (error instanceof AppError) {
    const fields = (error.errors ?? []).map((e) => `\n  ${e.field}: ${e.message}`).join('');
    return `${error.message}${fields}`;
  }
  return (error as Error).message;
}

export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (command === 'version' || command === '--version') {
    console.log(version());
    return EXIT.ok;
  }
  // The commands for people at a terminal read no server configuration.
  if (LOGIN_COMMANDS.includes(command)) return EXIT[await loginCommand(command, rest)];
  if (!['migrate', 'user', 'client', 'keys'].includes(command)) {
    console.error(`tessera: unknown command "${command}"\n\n${HELP}`);
    return EXIT.usage;
  }

  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`tessera: ${error.message}`);
      return EXIT.config;
    }
    throw error;
  }
  // The CLI speaks to people: only warnings and worse from the services reach stderr.
  const logger = createLogger({ level: process.env.TESSERA_LOG_LEVEL ?? 'warn', destination: process.stderr as never });
  const io = { out: (line: string) => console.log(line) };

  let core;
  // Deleting a client or rotating its secret revokes its tokens, and a new password or a disabled
  // account ends the user's sessions: all of them live in Redis. (Embedded, they live in the
  // server's memory, and the server cannot run beside the CLI.)
  let ephemeral: EphemeralStore | undefined;
  try {
    if ((command === 'client' || command === 'user') && config.redis.url) ephemeral = await openEphemeralStore(config, logger);
    // `migrate` reports what it applies; every other command brings the schema up to date first.
    core = await openCore(config, logger, { migrate: command !== 'migrate', ephemeral });
  } catch (error) {
    await ephemeral?.close();
    console.error(`tessera: ${describeFailure(error)}`);
    return EXIT.failure;
  }
  try {
    if (command === 'migrate') await migrateCommand(core, io);
    else if (command === 'client') await clientCommand(core, rest, io);
    else if (command === 'keys') await keysCommand(core, rest, io);
    else await userCommand(core, rest, io);
    return EXIT.ok;
  } catch (error) {
    console.error(`tessera: ${describeFailure(error)}`);
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return EXIT.usage;
    return EXIT.failure;
  } finally {
    await Promise.allSettled([core.database.close(), ephemeral?.close()]);
  }
}

process.exitCode = await runCli(process.argv.slice(2));
