import { parseArgs } from 'node:util';
import { renderUnicodeCompact } from 'uqr';
import { defaultCredentialsPath, DpopKey, PROFILE_NAME, SavedDeviceGrantAuth, TesseraClientError, type DevicePrompt } from '@tessera/client';
import { openBrowser } from './open-browser.ts';

/**
 * The commands for people at a terminal: `tessera login`, `token`, `whoami`, `logout`. They talk
 * to the issuer over HTTP and keep the login in the credentials file; they need no server
 * configuration and no database. All of them are built on `@tessera/client`.
 */
export const LOGIN_COMMANDS: readonly string[] = ['login', 'token', 'whoami', 'logout'];

/** What a command ended with; src/cli/main.ts turns it into the documented exit code. */
export type LoginCommandOutcome = 'ok' | 'failure' | 'usage' | 'loginRequired' | 'issuerUnreachable' | 'codeExpired' | 'accessDenied';

export const DEFAULT_CLIENT_ID = 'tessera-cli';

export const LOGIN_USAGE = `Usage:
  tessera login [--issuer URL] [--client-id ID] [--scope S ...] [--profile NAME] [--open] [--bearer]
  tessera token [--profile NAME] [--url URL [--method METHOD]]
  tessera whoami [--profile NAME]
  tessera logout [--profile NAME]

--issuer defaults to $TESSERA_ISSUER, then to the profile's saved issuer; --client-id to
$TESSERA_CLIENT_ID, then the saved one, then ${DEFAULT_CLIENT_ID}; --scope (repeatable, or
comma-separated) to the profile's saved scopes, then read; offline_access is always added.
The tokens are bound to a key pair saved with them (DPoP) when the issuer offers it; --bearer
saves plain bearer tokens instead. \`tessera token --url URL\` prints the request headers for
one request to URL (with a DPoP proof for it): curl -H @<(tessera token --url URL) URL.
Credentials: $XDG_CONFIG_HOME/tessera/credentials.json (mode 0600).`;

export interface LoginCommandIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether standard error is a terminal: the QR code is printed only then. */
  errIsTerminal: boolean;
  env: NodeJS.ProcessEnv;
  clock: () => number;
}

const defaultIo: LoginCommandIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  errIsTerminal: process.stderr.isTTY === true,
  env: process.env,
  clock: Date.now,
};

class LoginUsageError extends Error {}

/** "in 59 min", "in 40 s", "2 h ago". */
function relative(at: number, now: number): string {
  const seconds = Math.round((at - now) / 1000);
  const size = Math.abs(seconds);
  const amount = size < 120 ? `${size} s` : size < 7200 ? `${Math.round(size / 60)} min` : `${Math.round(size / 3600)} h`;
  return seconds >= 0 ? `in ${amount}` : `${amount} ago`;
}

function expiry(expiresAt: string | null, now: number): string {
  return expiresAt === null ? 'unknown' : `${expiresAt} (${relative(Date.parse(expiresAt), now)})`;
}

interface Options {
  profile: string;
  help?: boolean;
  issuer?: string;
  'client-id'?: string;
  scope?: string[];
  open?: boolean;
  bearer?: boolean;
  url?: string;
  method?: string;
}

function parse(args: string[], command: string): Options {
  try {
    const values = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        profile: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...(command === 'login'
          ? { issuer: { type: 'string' }, 'client-id': { type: 'string' }, scope: { type: 'string', multiple: true }, open: { type: 'boolean' }, bearer: { type: 'boolean' } }
          : {}),
        ...(command === 'token' ? { url: { type: 'string' }, method: { type: 'string' } } : {}),
      },
    }).values as Omit<Options, 'profile'> & { profile?: string };
    const profile = values.profile ?? 'default';
    if (!PROFILE_NAME.test(profile)) throw new LoginUsageError(`"${profile}" is not a profile name (letters, digits, ".", "_", "-")`);
    return { ...values, profile };
  } catch (error) {
    if (error instanceof LoginUsageError) throw error;
    throw new LoginUsageError((error as Error).message);
  }
}

/** The run-again hint, naming the profile when it is not the default one. */
function loginAgain(profile: string): string {
  return profile === 'default' ? '`tessera login`' : `\`tessera login --profile ${profile}\``;
}

/**
 * The URL as a QR code of half-block characters, two rows of modules a line. Each line is drawn
 * bright white on black, so that the code reads the right way round on dark and light terminals.
 */
function qrCode(url: string): string {
  return renderUnicodeCompact(url, { border: 2 })
    .split('\n')
    .map((line) => `\x1b[97;40m${line}\x1b[0m`)
    .join('\n');
}

function promptPrinter(io: LoginCommandIo, open: boolean) {
  return async (prompt: DevicePrompt) => {
    const complete = prompt.verificationUriComplete ?? prompt.verificationUri;
    io.err(`\nOpen this page in a browser:\n\n    ${prompt.verificationUri}\n\nand enter the code:\n\n    ${prompt.userCode}\n\n`);
    if (io.errIsTerminal) {
      io.err(`${qrCode(complete)}\n`);
      io.err(`Or scan this QR code with a phone: it opens ${complete}\n\n`);
    }
    if (open) {
      const browser = await openBrowser(complete, io.env);
      io.err(browser.opened ? `Opened ${complete} in a browser (${browser.command}).\n\n` : `Could not open a browser: ${browser.reason}. Open the page yourself.\n\n`);
    }
    io.err(`Waiting for the approval (the code expires ${relative(io.clock() + prompt.expiresInSeconds * 1000, io.clock())})...\n`);
  };
}

async function login(options: Options, io: LoginCommandIo): Promise<LoginCommandOutcome> {
  const profile = options.profile;
  const auth = new SavedDeviceGrantAuth({ profile, file: defaultCredentialsPath(io.env), clock: io.clock });
  const saved = await auth.saved();
  const issuer = options.issuer ?? (io.env.TESSERA_ISSUER || undefined) ?? saved?.issuer;
  if (!issuer) throw new LoginUsageError('which issuer? Pass --issuer URL (e.g. https://auth.example.org), or set TESSERA_ISSUER');
  const clientId = options['client-id'] ?? (io.env.TESSERA_CLIENT_ID || undefined) ?? saved?.clientId ?? DEFAULT_CLIENT_ID;
  const asked = (options.scope ?? []).flatMap((value) => value.split(/[\s,]+/)).filter(Boolean);
  const sameIssuer = saved && saved.issuer.replace(/\/+$/, '') === issuer.replace(/\/+$/, '');
  const scopes = asked.length ? asked : sameIssuer && saved.scope ? saved.scope.split(' ') : ['read'];

  io.err(`Logging in to ${issuer} with the client ${clientId} (profile ${profile}).\n`);
  const result = await auth.login({ issuer, clientId, scopes, onPrompt: promptPrinter(io, options.open === true), dpop: options.bearer !== true });
  const bound = result.tokenType === 'DPoP';
  let who = '';
  try {
    const identity = await auth.identity();
    if (identity.username) who = ` as ${identity.username}`;
  } catch {
    // Only for the greeting: the login itself has worked and is saved.
  }
  io.err(
    `\nLogged in to ${result.issuer}${who} with the scopes ${result.scope || '(none)'}. The access token expires ${result.expiresAt ? relative(Date.parse(result.expiresAt), io.clock()) : 'at an unknown time'}` +
      `${result.refreshToken ? ' and is refreshed automatically' : '; there is no refresh token, so log in again then'}.\n` +
      (bound ? 'The tokens are bound to a key saved with them (DPoP): each request needs a proof made with it.\n' : '') +
      `Saved in ${auth.file.path}${profile === 'default' ? '' : ` (profile ${profile})`}. Use it with: ` +
      (bound
        ? `curl -H @<(tessera token${profile === 'default' ? '' : ` --profile ${profile}`} --url URL) URL\n`
        : `curl -H "Authorization: Bearer $(tessera token${profile === 'default' ? '' : ` --profile ${profile}`})" …\n`),
  );
  return 'ok';
}

async function token(options: Options, io: LoginCommandIo): Promise<LoginCommandOutcome> {
  const auth = new SavedDeviceGrantAuth({ profile: options.profile, file: defaultCredentialsPath(io.env), clock: io.clock });
  // Asked of the issuer first, as whoami asks: a token still fresh by the clock here may belong to
  // a login the issuer has ended. A refused one is refreshed; a refused refresh is login_required.
  await auth.identity();
  if (options.method !== undefined && options.url === undefined) throw new LoginUsageError('--method goes with --url');
  if (options.url !== undefined) {
    const url = URL.parse(options.url);
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new LoginUsageError(`"${options.url}" is not an http(s) URL`);
    // One request's headers, as curl -H @file reads them: the proof is good for this method and URL, once.
    const headers = await auth.authorizationHeaders((options.method ?? 'GET').toUpperCase(), url.href);
    io.out(Object.entries(headers).map(([name, value]) => `${name === 'dpop' ? 'DPoP' : 'Authorization'}: ${value}\n`).join(''));
    return 'ok';
  }
  io.out(`${await auth.getAccessToken()}\n`);
  return 'ok';
}

async function whoami(options: Options, io: LoginCommandIo): Promise<LoginCommandOutcome> {
  const profile = options.profile;
  const auth = new SavedDeviceGrantAuth({ profile, file: defaultCredentialsPath(io.env), clock: io.clock });
  const identity = await auth.identity();
  // Read after asking: the question may have refreshed the tokens.
  const saved = (await auth.saved())!;
  const rows: [string, string][] = [
    ['issuer', saved.issuer],
    ['client', saved.clientId],
    ['profile', profile],
    ['subject', identity.subject ?? '(the issuer did not say)'],
    ['username', identity.username ?? '(the issuer did not say)'],
    ['scopes', (identity.scopes ?? saved.scope.split(' ')).join(' ')],
    ['expires', expiry(saved.expiresAt, io.clock())],
    ['binding', saved.tokenType === 'DPoP' && saved.dpopKey ? `DPoP (key thumbprint ${(await DpopKey.fromJwk(saved.dpopKey)).thumbprint})` : 'bearer'],
  ];
  io.out(rows.map(([name, value]) => `${`${name}:`.padEnd(10)}${value}\n`).join(''));
  return 'ok';
}

async function logout(options: Options, io: LoginCommandIo): Promise<LoginCommandOutcome> {
  const profile = options.profile;
  const auth = new SavedDeviceGrantAuth({ profile, file: defaultCredentialsPath(io.env), clock: io.clock });
  const issuer = (await auth.saved())?.issuer;
  const result = await auth.logout();
  if (!result.loggedIn) {
    io.err(`Not logged in (profile ${profile}): nothing to do.\n`);
    return 'ok';
  }
  if (result.revoked) {
    io.err(`Logged out of ${issuer}: the login is revoked and its saved credentials are deleted.\n`);
    return 'ok';
  }
  io.err(`tessera: the saved credentials are deleted, but the login could not be revoked at ${issuer} (${result.error?.message}): it stays valid there until it expires.\n`);
  return result.error?.code === 'issuer_unreachable' ? 'issuerUnreachable' : 'failure';
}

/** The message and outcome of a failure of @tessera/client. */
function describe(error: TesseraClientError, profile: string): { message: string; outcome: LoginCommandOutcome } {
  switch (error.code) {
    case 'issuer_unreachable':
      return { message: `${error.message}: check the issuer URL and the network`, outcome: 'issuerUnreachable' };
    case 'access_denied':
      return { message: `${error.message}: nothing was saved`, outcome: 'accessDenied' };
    case 'expired_token':
      return { message: `${error.message}: run \`tessera login\` again, and approve within the time`, outcome: 'codeExpired' };
    case 'login_required':
      return { message: `${error.message}: run ${loginAgain(profile)}${error.message.startsWith('not logged in') ? '' : ' again'}`, outcome: 'loginRequired' };
    default:
      return { message: error.message, outcome: 'failure' };
  }
}

/** Runs `tessera login|token|whoami|logout`; messages go to standard error, results to standard output. */
export async function loginCommand(command: string, args: string[], io: LoginCommandIo = defaultIo): Promise<LoginCommandOutcome> {
  let options: Options;
  try {
    options = parse(args, command);
  } catch (error) {
    io.err(`tessera ${command}: ${(error as Error).message}\n\n${LOGIN_USAGE}\n`);
    return 'usage';
  }
  if (options.help) {
    io.out(`${LOGIN_USAGE}\n`);
    return 'ok';
  }
  try {
    if (command === 'login') return await login(options, io);
    if (command === 'token') return await token(options, io);
    if (command === 'whoami') return await whoami(options, io);
    return await logout(options, io);
  } catch (error) {
    if (error instanceof LoginUsageError) {
      io.err(`tessera ${command}: ${error.message}\n\n${LOGIN_USAGE}\n`);
      return 'usage';
    }
    if (error instanceof TesseraClientError) {
      const { message, outcome } = describe(error, options.profile);
      io.err(`tessera: ${message}.\n`);
      return outcome;
    }
    throw error;
  }
}
