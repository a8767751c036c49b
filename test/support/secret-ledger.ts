import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ENV_BINDINGS } from '../../src/config/load.ts';

// The secret ledger: with TESSERA_SECRET_LEDGER=<dir>, every test run records each secret it sees
// minted or sent (tokens, passwords, sessions, client secrets, configured secrets) in <dir>/secrets/,
// and every log line of every Tessera it starts in <dir>/logs/. `npm run test:log-secrets`
// (test/logs/no-secrets-in-logs.test.ts) then fails if any recorded secret appears in any log.
// Without the variable every function here does nothing. Rules: docs/development.md, "Secrets never in logs".

/**
 * A value is recorded only from this many characters on: Tessera's shortest password (its default
 * passwords.minLength), so every password it accepts is checked, while short values that also
 * occur as ordinary words (a field named "password", a user code) are not.
 */
export const SECRET_MIN_LENGTH = 10;

/** One recorded secret, as a line of <dir>/secrets/*.jsonl. */
export interface LedgerSecret {
  kind: string;
  value: string;
  /** The test file that saw it. */
  test: string;
}

const run = `${process.pid}-${randomBytes(3).toString('hex')}`;
const recorded = new Set<string>();
let secretsFile: string | undefined;
let logCount = 0;

export function ledgerDir(): string | undefined {
  return process.env.TESSERA_SECRET_LEDGER || undefined;
}

/** The test file running in this worker (its base name), or "unknown" outside a test. */
function currentTest(): string {
  const state = (globalThis as { expect?: { getState(): { testPath?: string } } }).expect?.getState();
  return state?.testPath ? basename(state.testPath) : 'unknown';
}

/** Records `value` as a secret of `kind` (access_token, password, …) if the ledger is on and it is long enough. */
export function recordSecret(kind: string, value: unknown): void {
  const dir = ledgerDir();
  if (!dir || typeof value !== 'string' || value.length < SECRET_MIN_LENGTH || recorded.has(value)) return;
  recorded.add(value);
  if (!secretsFile) {
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    secretsFile = join(dir, 'secrets', `${run}.jsonl`);
  }
  const line: LedgerSecret = { kind, value, test: currentTest() };
  appendFileSync(secretsFile, `${JSON.stringify(line)}\n`);
}

/** Records the secrets in a Tessera's (or the CLI's) environment: those config/load.ts marks secret, and URL passwords. */
export function recordConfigSecrets(env: Record<string, string | undefined>): void {
  if (!ledgerDir()) return;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const binding = ENV_BINDINGS[name];
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
      // A URL (DATABASE_URL, REDIS_URL): its password is the secret; the rest may be logged.
      try {
        recordSecret(`password in ${name}`, decodeURIComponent(new URL(value).password));
      } catch {
        // Not a URL after all: nothing to record.
      }
    } else if (binding?.secret) {
      for (const part of binding.kind === 'list' ? value.split(',') : [value]) recordSecret(`config ${name}`, part.trim());
    }
  }
}

/** Keys of JSON bodies (answers and requests) whose string values are secrets. */
const SECRET_KEYS: Readonly<Record<string, string>> = {
  access_token: 'access_token',
  refresh_token: 'refresh_token',
  id_token: 'id_token',
  device_code: 'device_code',
  token: 'token',
  session: 'session',
  secret: 'client_secret',
  client_secret: 'client_secret',
  registration_access_token: 'registration_access_token',
  password: 'password',
  new_password: 'password',
  new_password_again: 'password',
  current_password: 'password',
  code_verifier: 'code_verifier',
  client_assertion: 'client_assertion',
};

/** Records every secret-named string in a parsed JSON body or form (any depth). */
export function recordSecretsIn(body: unknown, depth = 0): void {
  if (!ledgerDir() || depth > 8 || body === null || typeof body !== 'object') return;
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (typeof value === 'string') {
      const kind = SECRET_KEYS[key];
      if (kind) recordSecret(kind, value);
    } else recordSecretsIn(value, depth + 1);
  }
}

/** Tessera's own credentials (tsr_pat_, tsr_ses_, tsr_cs_ …) and JWTs, as a command prints them. */
const PRINTED_CREDENTIAL = /\btsr_[a-z]+_[0-9A-Za-z]{20,}|\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/g;

/**
 * Records the credentials in what a command printed as its answer (standard output: a client
 * secret it issued, a token it was asked for), which is not a log but must not reach one.
 */
export function recordPrintedSecrets(output: string): void {
  if (!ledgerDir()) return;
  for (const [value] of output.matchAll(PRINTED_CREDENTIAL)) recordSecret('printed by the CLI', value);
}

/**
 * A file in <dir>/logs/ for the log lines of one source (a Tessera in this process, a server
 * process's output): a function that appends to it, or undefined when the ledger is off.
 */
export function ledgerLog(source: string): ((chunk: string | Buffer) => void) | undefined {
  const dir = ledgerDir();
  if (!dir) return undefined;
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const file = join(dir, 'logs', `${currentTest()}.${run}.${++logCount}.${source}.log`);
  const fd = openSync(file, 'a');
  // Written at once, synchronously: a worker that ends right after a test loses nothing.
  return (chunk) => {
    if (typeof chunk === 'string') writeSync(fd, chunk);
    else writeSync(fd, chunk);
  };
}

/** The services a test uses to make accounts, clients and tokens directly (a core's). */
interface SecretMakers {
  accounts: { createUser(input: { password?: string }, ...rest: never[]): Promise<unknown>; changePassword(username: string, password: string, ...rest: never[]): Promise<unknown> };
  clients: { create(...args: never[]): Promise<{ secret?: string | null }>; rotateSecret(...args: never[]): Promise<string> };
  personalTokens: { create(...args: never[]): Promise<{ token: string }>; rotate(...args: never[]): Promise<{ token: string }> };
  sessions?: { create(...args: never[]): Promise<{ token: string }> };
}

/**
 * Records the secrets a test makes through a core's services directly (passwords it sets, client
 * secrets, personal tokens, sessions), by wrapping those methods of `core` in place.
 */
export function recordCoreSecrets(core: SecretMakers): void {
  if (!ledgerDir()) return;
  const wrap = <T extends object, K extends keyof T>(target: T, name: K, record: (args: unknown[], result: unknown) => void) => {
    const original = target[name] as (...args: unknown[]) => Promise<unknown>;
    (target as Record<K, unknown>)[name] = async (...args: unknown[]) => {
      // A password is recorded before the call: a refused one must not be logged either.
      record(args, undefined);
      const result = await original.apply(target, args);
      record([], result);
      return result;
    };
  };
  wrap(core.accounts, 'createUser', ([input]) => recordSecret('password', (input as { password?: string } | undefined)?.password));
  wrap(core.accounts, 'changePassword', ([, password]) => recordSecret('password', password));
  wrap(core.clients, 'create', (_, result) => recordSecret('client_secret', (result as { secret?: string } | undefined)?.secret));
  wrap(core.clients, 'rotateSecret', (_, result) => recordSecret('client_secret', result));
  wrap(core.personalTokens, 'create', (_, result) => recordSecret('personal_token', (result as { token?: string } | undefined)?.token));
  wrap(core.personalTokens, 'rotate', (_, result) => recordSecret('personal_token', (result as { token?: string } | undefined)?.token));
  if (core.sessions) wrap(core.sessions, 'create', (_, result) => recordSecret('session', (result as { token?: string } | undefined)?.token));
}
