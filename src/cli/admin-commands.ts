import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { Actor } from '../accounts/account-service.ts';
import type { User } from '../accounts/user.ts';
import { AppError } from '../shared/errors.ts';
import { migrate } from '../store/sql/migrations.ts';
import type { Core, OnlineCore } from '../core.ts';
import { readNewPassword, UsageError } from './prompt.ts';

export interface Output {
  out(line: string): void;
}

/** The operating-system user running the command, as the audit log's actor. */
export function cliActor(): Actor {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // Containers may run as a uid without a passwd entry.
  }
  return { actor: `cli:${name}` };
}

function describeUser(user: User): string {
  const state = user.disabled ? 'disabled' : 'active';
  return `${user.username}\t${user.email ?? '-'}\t${user.allowedScopes.join(',')}\t${state}\t${user.id}`;
}

function splitScopes(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value.split(/[,\s]+/).filter(Boolean);
}

function oneUsername(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError(`usage: ${usage}`);
  return positionals[0]!;
}

/**
 * A command whose arguments are checked: what remains needs the core (the database) and prints.
 * `withoutRedis`, when set, is why the command cannot work without the servers' Redis: it is
 * then refused before anything is opened.
 */
export type PlannedCommand<C = Core> = ((core: C, io: Output) => Promise<void>) & { withoutRedis?: string };

/** `tessera migrate`: applies pending migrations (the server also does so at start). */
export async function migrateCommand(core: Core, io: Output): Promise<void> {
  const report = await migrate(core.database);
  io.out(report.applied.length ? `Applied ${report.applied.map((m) => `${m.version}_${m.name}`).join(', ')}; schema at ${report.current}.` : `Schema is up to date (${report.current}).`);
}

/**
 * `tessera user …`, its arguments checked before anything is opened (a usage error costs no
 * database start: PGlite takes seconds to open).
 */
export function planUserCommand(args: string[]): PlannedCommand {
  const [action, ...rest] = args;
  switch (action) {
    case 'create': {
      const usage = 'tessera user create <username> [--email E] [--scopes S,...] [--password-stdin]';
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { email: { type: 'string' }, scopes: { type: 'string' }, 'password-stdin': { type: 'boolean' } },
      });
      const username = oneUsername(positionals, usage);
      return async ({ accounts }, io) => {
        const password = await readNewPassword(values['password-stdin'] ?? false);
        const user = await accounts.createUser({ username, email: values.email ?? null, password, scopes: splitScopes(values.scopes) }, cliActor());
        io.out(`Created ${user.username} (${user.id}) with scopes ${user.allowedScopes.join(', ')}.`);
      };
    }
    case 'passwd': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { 'password-stdin': { type: 'boolean' } } });
      const username = oneUsername(positionals, 'tessera user passwd <username> [--password-stdin]');
      return async ({ accounts }, io) => {
        if (!(await accounts.findUser(username))) throw AppError.notFound(`No user named "${username}".`);
        const password = await readNewPassword(values['password-stdin'] ?? false);
        const user = await accounts.changePassword(username, password, cliActor());
        io.out(`Changed the password of ${user.username}.`);
      };
    }
    case 'disable':
    case 'enable': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const username = oneUsername(positionals, `tessera user ${action} <username>`);
      return async ({ accounts }, io) => {
        const user = await accounts.setDisabled(username, action === 'disable', cliActor());
        io.out(`${user.username} is now ${user.disabled ? 'disabled' : 'enabled'}.`);
      };
    }
    case 'scopes': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      if (positionals.length !== 2) throw new UsageError('usage: tessera user scopes <username> <scope,scope,...>');
      const [username, scopes] = positionals as [string, string];
      return async ({ accounts }, io) => {
        const user = await accounts.setAllowedScopes(username, splitScopes(scopes) ?? [], cliActor());
        io.out(`${user.username} may now be granted: ${user.allowedScopes.join(', ')}.`);
      };
    }
    case 'email': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { clear: { type: 'boolean' } } });
      const usage = 'tessera user email <username> <e-mail> | --clear';
      if (positionals.length !== (values.clear ? 1 : 2)) throw new UsageError(`usage: ${usage}`);
      const [username, email] = positionals as [string, string | undefined];
      return async ({ accounts }, io) => {
        const user = await accounts.setEmail(username, values.clear ? null : email!, cliActor());
        io.out(user.email ? `${user.username}'s e-mail is now ${user.email}.` : `${user.username} has no e-mail now.`);
      };
    }
    case 'delete': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const username = oneUsername(positionals, 'tessera user delete <username>');
      return async ({ accounts }, io) => {
        const user = await accounts.deleteUser(username, cliActor());
        io.out(`Deleted ${user.username} (${user.id}) and its personal tokens; its sessions and logins ended.`);
      };
    }
    case 'sign-out': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const username = oneUsername(positionals, 'tessera user sign-out <username>');
      const signOut: PlannedCommand = async ({ accounts }, io) => {
        const ended = await accounts.endSignIns(username, cliActor());
        io.out(`Ended ${ended.sessions} session${ended.sessions === 1 ? '' : 's'} and ${ended.logins} login${ended.logins === 1 ? '' : 's'} of ${username}.`);
      };
      signOut.withoutRedis = 'without Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES) sessions and logins live in the server\'s memory, out of this command\'s reach: restarting the server ends them all';
      return signOut;
    }
    case 'list': {
      const { values } = parseArgs({ args: rest, options: { limit: { type: 'string', default: '100' }, offset: { type: 'string', default: '0' } } });
      const limit = Number(values.limit);
      const offset = Number(values.offset);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000 || !Number.isInteger(offset) || offset < 0) {
        throw new UsageError('--limit must be 1–10000 and --offset 0 or more');
      }
      return async ({ accounts }, io) => {
        const users = await accounts.listUsers({ limit, offset });
        io.out('USERNAME\tEMAIL\tSCOPES\tSTATE\tID');
        for (const user of users) io.out(describeUser(user));
      };
    }
    case 'unlock': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const login = oneUsername(positionals, 'tessera user unlock <username or e-mail>');
      const unlock: PlannedCommand = async (core, io) => {
        const { user, report } = await (core as OnlineCore).signIn.unlock(login, cliActor());
        const what = [report.lockedSources ? `${report.lockedSources} locked-out address${report.lockedSources === 1 ? '' : 'es'}` : '', report.paced ? 'the account-wide limit' : ''].filter(Boolean);
        io.out(what.length ? `Unlocked ${user.username}: lifted ${what.join(' and ')}.` : `${user.username} was not locked; its failure counts are cleared.`);
      };
      // The sign-in limits live in the ephemeral store: Redis, or the server's own memory.
      unlock.withoutRedis = 'without Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES) the sign-in limits live in the server\'s memory, out of this command\'s reach: restarting the server lifts every lockout (docs/design/sign-in-throttling.md)';
      return unlock;
    }
    case 'reset-second-factor': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const username = oneUsername(positionals, 'tessera user reset-second-factor <username>');
      return async ({ accounts, secondFactorReset }, io) => {
        const user = await accounts.findUser(username);
        if (!user) throw AppError.notFound(`No user named "${username}".`);
        const removed = await secondFactorReset.reset(user, cliActor());
        const what = [removed.totp ? 'the authenticator app' : '', removed.recoveryCodes ? `${removed.recoveryCodes} recovery codes` : '', removed.passkeys ? `${removed.passkeys} passkey${removed.passkeys === 1 ? '' : 's'}` : ''].filter(Boolean);
        io.out(what.length ? `Removed ${what.join(', ')} of ${user.username}: the password alone signs in now.` : `${user.username} had no second factor.`);
      };
    }
    default:
      throw new UsageError('usage: tessera user create|passwd|disable|enable|unlock|reset-second-factor|scopes|email|sign-out|delete|list ...');
  }
}
