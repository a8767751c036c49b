import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.ts';
import { ADMIN_SCOPE } from '../config/admin-scope.ts';
import { AppError } from '../shared/errors.ts';
import { parseInput } from '../shared/validation.ts';
import type { PasswordHasher } from './hashing/password-hasher.ts';
import { emailSchema, usernameSchema, type User } from './user.ts';
import { UniqueViolation, withoutSecret, type UserRepository } from './user-repository.ts';
import { checkCatalogScope } from '../shared/path-scopes.ts';

/** Who asked for a change, for the audit log. */
export interface Actor {
  actor: string;
  ip?: string | null;
  userAgent?: string | null;
}

/** Told about changes that must end what a user had: sessions, cached introspections. */
export interface AccountListener {
  passwordChanged?(user: User): Promise<void>;
  disabled?(user: User): Promise<void>;
  /** Any change to what the user's credentials grant: password, disabled or enabled, allowed scopes, deletion. */
  changed?(user: User): Promise<void>;
}

/** What ending every sign-in of a user ended: API and browser sessions, OAuth logins (grants). */
export interface EndedSignIns {
  sessions: number;
  logins: number;
}

/** A page of accounts and the cursor of the next one (null on the last). */
export interface UserPage {
  users: User[];
  nextCursor: string | null;
}

export interface AccountServiceOptions {
  users: UserRepository;
  audit: AuditLog;
  hasher: PasswordHasher;
  /** The scope catalog: a user's allowed scopes must come from it. */
  scopeCatalog: Record<string, string>;
  /** The catalog's path-scoped names: an account may hold "storage.read:/atlas" (config.pathScopes). */
  pathScopes?: readonly string[];
  defaultScopes: string[];
  passwordMinLength: number;
  listeners?: AccountListener[];
  /**
   * Ends every session and OAuth login of a user; absent where the ephemeral store is not open
   * (the admin CLI without Redis), and then refused.
   */
  endSignIns?: (user: User) => Promise<EndedSignIns>;
}

export interface CreateUserInput {
  username: string;
  email?: string | null;
  password: string;
  scopes?: string[];
}

/** The outcome of a password check; `user` only when it succeeded. */
export type Authentication = { ok: true; user: User } | { ok: false; reason: 'unknown_user' | 'wrong_password' | 'disabled' | 'no_password' };

/** The account a login name addresses (null: none), and the check of a password against it. */
export interface SignInCandidate {
  user: User | null;
  check(password: string): Promise<Authentication>;
}

const MAX_PASSWORD_LENGTH = 1024;

/**
 * Why `by` may not make this change to an account, or null: nobody disables, deletes or takes the
 * admin scope from their own account (the admin API and console act as `user:<id>`), so that the
 * last administrator is never locked out by mistake; another administrator can. The service
 * refuses each such change; a caller applying several changes at once asks first.
 */
export function ownAccountRefusal(user: Pick<User, 'id' | 'allowedScopes'>, by: Actor, change: { disable?: boolean; delete?: boolean; scopes?: readonly string[] }): AppError | null {
  if (by.actor !== `user:${user.id}`) return null;
  const refuse = (what: string, field: string, message: string) =>
    AppError.conflict(`You cannot ${what} your own account: another administrator can.`, [{ field, code: 'own_account', message }]);
  if (change.delete) return refuse('delete', 'username', 'not your own account: another administrator can delete it');
  if (change.disable) return refuse('disable', 'disabled', 'not your own account: another administrator can disable it');
  if (change.scopes && user.allowedScopes.includes(ADMIN_SCOPE) && !change.scopes.includes(ADMIN_SCOPE)) {
    return refuse(`take the "${ADMIN_SCOPE}" scope from`, 'scopes', `keep "${ADMIN_SCOPE}": another administrator can take it from you`);
  }
  return null;
}

function throwIf(error: AppError | null): void {
  if (error) throw error;
}

const userSearchSchema = z.object({
  query: z.string().max(254, { message: 'must be at most 254 characters' }).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(500),
});

/** The cursor of the page after `user`: its username, opaque to callers. */
const cursorAfter = (user: User) => Buffer.from(user.username).toString('base64url');

export function createAccountService(options: AccountServiceOptions) {
  const { users, audit, hasher, scopeCatalog, pathScopes = [], listeners = [] } = options;
  const pathScoped = new Set(pathScopes);

  const passwordSchema = z
    .string()
    .min(options.passwordMinLength, { message: `must be at least ${options.passwordMinLength} characters` })
    .max(MAX_PASSWORD_LENGTH, { message: `must be at most ${MAX_PASSWORD_LENGTH} characters` });
  const scopesSchema = z
    .array(z.string())
    .min(1, { message: 'must name at least one scope' })
    .superRefine((scopes, context) => {
      scopes.forEach((scope, index) => {
        const checked = checkCatalogScope(scope, scopeCatalog, pathScoped);
        if (!checked.ok) context.addIssue({ code: 'custom', path: [index], message: `${checked.problem} (known: ${Object.keys(scopeCatalog).join(', ')})` });
      });
    })
    .transform((scopes) => [...new Set(scopes)]);
  const createSchema = z.object({
    username: usernameSchema,
    email: emailSchema.nullish(),
    password: passwordSchema,
    scopes: scopesSchema.optional(),
  });

  async function requireUser(username: string) {
    const user = await users.findByUsername(username);
    if (!user) throw AppError.notFound(`No user named "${username}".`);
    return user;
  }

  return {
    async createUser(input: CreateUserInput, by: Actor): Promise<User> {
      const valid = parseInput(createSchema, input);
      const passwordHash = await hasher.hash(valid.password);
      try {
        const user = await users.insert({
          username: valid.username,
          email: valid.email ?? null,
          passwordHash,
          allowedScopes: valid.scopes ?? options.defaultScopes,
        });
        await audit.record({ ...by, action: 'user.created', subject: `user:${user.id}`, details: { username: user.username, scopes: user.allowedScopes } });
        return withoutSecret(user);
      } catch (error) {
        if (error instanceof UniqueViolation) {
          throw AppError.conflict(`That ${error.field} is already taken.`, [{ field: error.field, code: 'taken', message: `already taken` }]);
        }
        throw error;
      }
    },

    /**
     * Finds the account a login name (username or e-mail, any case) addresses, and returns it with
     * a check of a password against it; the caller decides between the two whether to check
     * (a sign-in limit). Every check is one argon2 verification with the current parameters,
     * against the account's hash or, when there is no account (or the password is over-long),
     * against the decoy hash: time does not tell whether the account exists or is disabled. A
     * hash made with older parameters is replaced after a successful check.
     */
    async beginSignIn(login: string): Promise<SignInCandidate> {
      const found = login.length <= 254 ? await users.findByLogin(login) : null;
      return {
        user: found && withoutSecret(found),
        async check(password: string): Promise<Authentication> {
          const usable = found !== null && found.passwordHash !== null && password.length <= MAX_PASSWORD_LENGTH;
          const decoy = await hasher.decoyHash();
          // An account without a local password pays the same verification, against the decoy.
          const check = await hasher.verify(usable ? found.passwordHash! : decoy, password.slice(0, MAX_PASSWORD_LENGTH));
          if (found !== null && found.passwordHash === null) return { ok: false, reason: 'no_password' };
          if (!usable) return { ok: false, reason: 'unknown_user' };
          if (!check.ok) return { ok: false, reason: 'wrong_password' };
          if (found.disabled) return { ok: false, reason: 'disabled' };
          if (check.needsRehash) {
            await users.updatePasswordHash(found.id, await hasher.hash(password), false);
          }
          return { ok: true, user: withoutSecret(found) };
        },
      };
    },

    /**
     * An account without a local password, for an identity provider's first sign-in
     * (docs/sign-in-providers.md): the first of `usernames` that is free, or it with a suffix
     * (-2, -3, …); never an existing account. `email` is dropped when another account has it.
     */
    async createPasswordlessUser(input: { usernames: string[]; email: string | null; scopes: string[] }, by: Actor & { details?: Record<string, unknown> }): Promise<{ user: User; emailDropped: boolean }> {
      const scopes = parseInput(z.object({ scopes: scopesSchema }), { scopes: input.scopes }).scopes;
      const candidates = input.usernames.filter((name) => usernameSchema.safeParse(name).success);
      if (candidates.length === 0) throw new Error('createPasswordlessUser: no valid username candidate');
      let email = input.email !== null && emailSchema.safeParse(input.email).success ? input.email : null;
      let emailDropped = input.email !== null && email === null;
      const { details, ...actor } = by;
      for (let attempt = 0; attempt < 50; attempt += 1) {
        const base = candidates[attempt < candidates.length ? attempt : 0]!;
        const suffix = attempt < candidates.length ? '' : `-${attempt - candidates.length + 2}`;
        const username = `${base.slice(0, 64 - suffix.length)}${suffix}`;
        try {
          const user = await users.insert({ username, email, passwordHash: null, allowedScopes: scopes });
          await audit.record({ ...actor, action: 'user.created', subject: `user:${user.id}`, details: { username: user.username, scopes: user.allowedScopes, ...details, ...(emailDropped ? { emailDropped: true } : {}) } });
          return { user: withoutSecret(user), emailDropped };
        } catch (error) {
          if (!(error instanceof UniqueViolation)) throw error;
          if (error.field === 'email') {
            // Another account has this e-mail: the new account goes without it (never a takeover).
            email = null;
            emailDropped = true;
            attempt -= 1;
          }
        }
      }
      throw AppError.conflict('No free username could be found for this account.');
    },

    /** Whether the account has a local password (an account made by a provider may have none). */
    async hasPassword(userId: string): Promise<boolean> {
      const user = await users.findById(userId);
      return user !== null && user.passwordHash !== null;
    },

    /** Checks a password (beginSignIn, then its check). */
    async authenticate(login: string, password: string): Promise<Authentication> {
      return (await this.beginSignIn(login)).check(password);
    },

    async changePassword(username: string, newPassword: string, by: Actor): Promise<User> {
      const password = parseInput(z.object({ password: passwordSchema }), { password: newPassword }).password;
      const user = await requireUser(username);
      await users.updatePasswordHash(user.id, await hasher.hash(password), true);
      await audit.record({ ...by, action: 'user.password_changed', subject: `user:${user.id}` });
      const updated = withoutSecret(user);
      for (const listener of listeners) await listener.passwordChanged?.(updated);
      for (const listener of listeners) await listener.changed?.(updated);
      return updated;
    },

    async setDisabled(username: string, disabled: boolean, by: Actor): Promise<User> {
      const user = await requireUser(username);
      if (disabled) throwIf(ownAccountRefusal(user, by, { disable: true }));
      await users.setDisabled(user.id, disabled);
      await audit.record({ ...by, action: disabled ? 'user.disabled' : 'user.enabled', subject: `user:${user.id}` });
      const updated = { ...withoutSecret(user), disabled };
      if (disabled) for (const listener of listeners) await listener.disabled?.(updated);
      for (const listener of listeners) await listener.changed?.(updated);
      return updated;
    },

    async setAllowedScopes(username: string, scopes: string[], by: Actor): Promise<User> {
      const valid = parseInput(z.object({ scopes: scopesSchema }), { scopes }).scopes;
      const user = await requireUser(username);
      throwIf(ownAccountRefusal(user, by, { scopes: valid }));
      await users.setAllowedScopes(user.id, valid);
      await audit.record({ ...by, action: 'user.scopes_changed', subject: `user:${user.id}`, details: { scopes: valid } });
      const updated = { ...withoutSecret(user), allowedScopes: valid };
      for (const listener of listeners) await listener.changed?.(updated);
      return updated;
    },

    async findUser(username: string): Promise<User | null> {
      const user = await users.findByUsername(username);
      return user && withoutSecret(user);
    },

    /** By username or e-mail, case-insensitive. */
    async findUserByLogin(login: string): Promise<User | null> {
      const user = login.length <= 254 ? await users.findByLogin(login) : null;
      return user && withoutSecret(user);
    },

    async findUserById(id: string): Promise<User | null> {
      const user = await users.findById(id);
      return user && withoutSecret(user);
    },

    async listUsers(options: { limit: number; offset: number }): Promise<User[]> {
      return (await users.list(options)).map(withoutSecret);
    },

    /** Accounts in username order, a page at a time; `query` matches part of a username or e-mail. */
    async searchUsers(input: { query?: string; cursor?: string; limit: number }): Promise<UserPage> {
      const { query, cursor, limit } = parseInput(userSearchSchema, input);
      const after = cursor === undefined ? undefined : Buffer.from(cursor, 'base64url').toString();
      if (after !== undefined && !usernameSchema.safeParse(after).success) {
        throw AppError.validation([{ field: 'cursor', code: 'invalid', message: 'is not a cursor this service gave' }]);
      }
      const found = (await users.search({ ...(query ? { query } : {}), ...(after ? { after } : {}), limit: limit + 1 })).map(withoutSecret);
      const page = found.slice(0, limit);
      return { users: page, nextCursor: found.length > limit ? cursorAfter(page.at(-1)!) : null };
    },

    async setEmail(username: string, email: string | null, by: Actor): Promise<User> {
      const valid = parseInput(z.object({ email: emailSchema.nullable() }), { email }).email;
      const user = await requireUser(username);
      try {
        await users.setEmail(user.id, valid);
      } catch (error) {
        if (error instanceof UniqueViolation) throw AppError.conflict('That email is already taken.', [{ field: 'email', code: 'taken', message: 'already taken' }]);
        throw error;
      }
      await audit.record({ ...by, action: 'user.email_changed', subject: `user:${user.id}`, details: { email: valid } });
      const updated = { ...withoutSecret(user), email: valid };
      // The API-key pair may name the owner by e-mail: answers cached under the old one go.
      for (const listener of listeners) await listener.changed?.(updated);
      return updated;
    },

    /** Ends every API and browser session and every OAuth login (device or web) of the user. */
    async endSignIns(username: string, by: Actor): Promise<EndedSignIns> {
      if (!options.endSignIns) throw AppError.unavailable('Sessions and logins live in the servers\' Redis, which this process has not opened.');
      const user = withoutSecret(await requireUser(username));
      const ended = await options.endSignIns(user);
      await audit.record({ ...by, action: 'user.signed_out', subject: `user:${user.id}`, details: { ...ended } });
      return ended;
    },

    /**
     * Deletes the account: its sessions and OAuth logins end first (where the ephemeral store is
     * open), its personal tokens go with it, and the audit log keeps what it did.
     */
    async deleteUser(username: string, by: Actor): Promise<User> {
      const user = withoutSecret(await requireUser(username));
      throwIf(ownAccountRefusal(user, by, { delete: true }));
      const ended = options.endSignIns ? await options.endSignIns(user) : null;
      await users.delete(user.id);
      await audit.record({ ...by, action: 'user.deleted', subject: `user:${user.id}`, details: { username: user.username, ...(ended ?? {}) } });
      for (const listener of listeners) await listener.changed?.({ ...user, disabled: true });
      return user;
    },

    /**
     * On the first start with an empty database: creates the admin account with every scope of
     * the catalog. Returns the generated password (to be printed once) when none was configured.
     */
    async ensureInitialAdmin(username: string, configuredPassword: string | null): Promise<{ user: User; generatedPassword: string | null } | null> {
      if ((await users.count()) > 0) return null;
      const generatedPassword = configuredPassword ? null : randomBytes(18).toString('base64url');
      try {
        const user = await this.createUser(
          { username, password: configuredPassword ?? generatedPassword!, scopes: Object.keys(scopeCatalog) },
          { actor: 'system' },
        );
        return { user, generatedPassword };
      } catch (error) {
        // Another node created it first.
        if (error instanceof AppError && error.status === 409) return null;
        throw error;
      }
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
