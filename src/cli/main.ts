import { readFileSync } from 'node:fs';
import { EXIT } from './exit-codes.ts';
import { LOGIN_COMMANDS, loginCommand } from './login-commands.ts';


const HELP = `tessera — administer a Tessera authorization service

Usage:
  tessera migrate                           apply pending database migrations
  tessera user create <username> [--email E] [--scopes S,...] [--password-stdin]
  tessera user passwd <username> [--password-stdin]
  tessera user disable <username>
  tessera user enable <username>
  tessera user unlock <username or e-mail>  lift the account's sign-in lockouts (needs the servers' Redis)
  tessera user reset-second-factor <username>  remove the user's authenticator app, recovery codes and passkeys
  tessera user scopes <username> <S,...>    set the scopes a user may be granted (from the catalog, or admin)
  tessera user email <username> <E> | --clear
  tessera user sign-out <username>          end every session and login of the user (needs the servers' Redis)
  tessera user delete <username>            delete the account and its personal tokens, ending its sessions
  tessera user list [--limit N] [--offset N]
  tessera client create --kind device|service|resource_server|web --name NAME [--id ID]
                 [--scopes S,...] [--redirect-uri URI ...] [--default-resource R] [--access-token-ttl SECONDS]
                 [--jwks-file PATH]     public keys (a JWK Set or one JWK): private_key_jwt, no secret
                 [--may-introspect]     a service client that may also call the introspection endpoint
  tessera client list | show <id> | delete <id> | rotate-secret <id>
  tessera client rotate-keys <id> --jwks-file PATH   replace the public keys of a private_key_jwt client
  tessera client set-introspection <id> on|off       let a service client call the introspection endpoint
  tessera client set-token-exchange <id> --subject-kinds K,... --audiences A,... --scopes S,... | off
                                            what a client may exchange (RFC 8693), for which audiences and scopes
  tessera keys list                         signing keys, current first
  tessera keys rotate                       add a signing key; the old one stays published until its tokens expire
  tessera audit [--user NAME | --user-id ID] [--action A | --action PREFIX.] [--client ID]
                [--since TIME] [--until TIME] [--limit N] [--cursor C] [--json | --export]
                                            the audit log, newest first (--export: every match as JSON lines)
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
  if (!['migrate', 'user', 'client', 'keys', 'audit'].includes(command)) {
    console.error(`tessera: unknown command "${command}"\n\n${HELP}`);
    return EXIT.usage;
  }

  // The administration commands load the server's modules only when they are used, so that
  // `tessera token` in a script starts quickly.
  const { runAdminCommand } = await import('./admin-main.ts');
  return runAdminCommand(command, rest);
}

process.exitCode = await runCli(process.argv.slice(2));
