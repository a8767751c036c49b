import { Router, type Request } from 'express';
import { z } from 'zod';
import type { AccountService } from '../../accounts/account-service.ts';
import { emailSchema, type User } from '../../accounts/user.ts';
import { ADMIN_SCOPE } from '../../config/admin-scope.ts';
import { methodNotAllowed, requireJsonBody } from '../../http/refusals.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import { AppError } from '../../shared/errors.ts';
import { parseInput } from '../../shared/validation.ts';
import { adminActor } from './admin-requests.ts';

const USERS = '/api/v1/admin/users';

const listQuery = z.object({
  q: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional(),
});

const createBody = z.object({
  username: z.string(),
  email: z.string().nullable().optional(),
  password: z.string(),
  scopes: z.array(z.string()).optional(),
});

const changeBody = z
  .strictObject({
    email: emailSchema.nullable().optional(),
    scopes: z.array(z.string()).optional(),
    disabled: z.boolean().optional(),
    password: z.string().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, { message: 'name at least one of email, scopes, disabled, password' });

export function describeUser(user: User) {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    scopes: user.allowedScopes,
    disabled: user.disabled,
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
    password_changed_at: user.passwordChangedAt.toISOString(),
  };
}

export interface AdminUserRouteDependencies {
  accounts: AccountService;
  signIn: Pick<PasswordSignIn, 'unlock'>;
}

/**
 * Accounts, for administrators: create, list (search, cursor paging), show, change (e-mail,
 * scopes, disabled, password), delete, unlock, end every sign-in. The CLI's `tessera user` calls
 * the same services; each change is audited with the administrator as its actor.
 */
export function createAdminUserRoutes({ accounts, signIn }: AdminUserRouteDependencies): Router {
  const router = Router();

  /** The account the path names (404 when none). */
  async function target(req: Request): Promise<User> {
    const user = await accounts.findUserById(String(req.params.id));
    if (!user) throw AppError.notFound('No such user.');
    return user;
  }

  /** An administrator may not lock themselves out: another must do that. */
  function refuseSelf(req: Request, user: User, what: string): void {
    if (user.id === req.caller!.user.id) throw AppError.conflict(`You cannot ${what} your own account: another administrator can.`);
  }

  router.get(USERS, async (req, res, next) => {
    try {
      const { q, limit, cursor } = parseInput(listQuery, req.query);
      const page = await accounts.searchUsers({ ...(q ? { query: q } : {}), ...(cursor ? { cursor } : {}), limit });
      res.set('Cache-Control', 'no-store').json({ users: page.users.map(describeUser), next_cursor: page.nextCursor });
    } catch (error) {
      next(error);
    }
  });

  router.post(USERS, requireJsonBody(), async (req, res, next) => {
    try {
      const input = parseInput(createBody, req.body ?? {});
      const user = await accounts.createUser({ username: input.username, email: input.email ?? null, password: input.password, ...(input.scopes ? { scopes: input.scopes } : {}) }, adminActor(req));
      res.status(201).set('Cache-Control', 'no-store').location(`${USERS}/${user.id}`).json(describeUser(user));
    } catch (error) {
      next(error);
    }
  });
  router.all(USERS, methodNotAllowed(['GET', 'POST']));

  router.get(`${USERS}/:id`, async (req, res, next) => {
    try {
      res.set('Cache-Control', 'no-store').json(describeUser(await target(req)));
    } catch (error) {
      next(error);
    }
  });

  router.patch(`${USERS}/:id`, requireJsonBody(), async (req, res, next) => {
    try {
      const change = parseInput(changeBody, req.body ?? {});
      let user = await target(req);
      if (change.disabled === true) refuseSelf(req, user, 'disable');
      if (change.scopes && !change.scopes.includes(ADMIN_SCOPE)) refuseSelf(req, user, `take the "${ADMIN_SCOPE}" scope from`);
      const by = adminActor(req);
      // E-mail first: the one change another account can refuse (409), before anything is done.
      if (change.email !== undefined && change.email?.toLowerCase() !== user.email?.toLowerCase()) user = await accounts.setEmail(user.username, change.email, by);
      if (change.scopes) user = await accounts.setAllowedScopes(user.username, change.scopes, by);
      if (change.password !== undefined) user = await accounts.changePassword(user.username, change.password, by);
      if (change.disabled !== undefined && change.disabled !== user.disabled) user = await accounts.setDisabled(user.username, change.disabled, by);
      res.set('Cache-Control', 'no-store').json(describeUser(user));
    } catch (error) {
      next(error);
    }
  });

  router.delete(`${USERS}/:id`, async (req, res, next) => {
    try {
      const user = await target(req);
      refuseSelf(req, user, 'delete');
      await accounts.deleteUser(user.username, adminActor(req));
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });
  router.all(`${USERS}/:id`, methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  router.post(`${USERS}/:id/unlock`, async (req, res, next) => {
    try {
      const { report } = await signIn.unlock((await target(req)).username, adminActor(req));
      res.set('Cache-Control', 'no-store').json({ locked_sources: report.lockedSources, paced: report.paced });
    } catch (error) {
      next(error);
    }
  });
  router.all(`${USERS}/:id/unlock`, methodNotAllowed(['POST']));

  router.post(`${USERS}/:id/sign-out`, async (req, res, next) => {
    try {
      const ended = await accounts.endSignIns((await target(req)).username, adminActor(req));
      res.set('Cache-Control', 'no-store').json(ended);
    } catch (error) {
      next(error);
    }
  });
  router.all(`${USERS}/:id/sign-out`, methodNotAllowed(['POST']));

  return router;
}
