import { Router, type Request } from 'express';
import { z } from 'zod';
import { ownAccountRefusal, type AccountService } from '../../accounts/account-service.ts';
import { emailSchema, type User } from '../../accounts/user.ts';
import { defineOperation, route } from '../../http/api-operation.ts';
import { errorResponse, VALIDATION_FAILED } from '../../http/common-responses.ts';
import { methodNotAllowed, requireJsonBody } from '../../http/refusals.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import { AppError } from '../../shared/errors.ts';
import { ADMIN_BODY_FAILURES, ADMIN_CREDENTIALS, ADMIN_DESCRIPTION, ADMIN_FAILURES } from './admin-operations.ts';
import { adminActor } from './admin-requests.ts';

const USERS = '/api/v1/admin/users';

const listQuery = z.object({
  q: z.string().optional().meta({ description: 'Only accounts whose username or e-mail contains this.' }),
  limit: z.coerce.number().int().min(1).max(500).default(50).meta({ description: 'Accounts per page (1–500).' }),
  cursor: z.string().optional().meta({ description: "The previous page's `next_cursor`." }),
});

const createBody = z.object({
  username: z.string(),
  email: z.string().nullable().optional(),
  password: z.string(),
  scopes: z.array(z.string()).optional().meta({ description: 'The scopes the account may use; the configured default otherwise.' }),
});

const changeBody = z
  .strictObject({
    email: emailSchema.nullable().optional(),
    scopes: z.array(z.string()).optional(),
    disabled: z.boolean().optional().meta({ description: 'Disabling ends every sign-in of the account.' }),
    password: z.string().optional().meta({ description: 'A new password ends every sign-in of the account.' }),
  })
  .refine((body) => Object.keys(body).length > 0, { message: 'name at least one of email, scopes, disabled, password' });

const userSchema = z.object({
  id: z.string(),
  username: z.string(),
  email: z.string().nullable(),
  scopes: z.array(z.string()),
  disabled: z.boolean(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  password_changed_at: z.iso.datetime(),
});

const userId = z.object({ id: z.string().meta({ description: "The account's id." }) });
const NO_SUCH_USER = errorResponse('No such user.');
const NOT_YOURSELF = errorResponse('An administrator cannot disable, delete or take the `admin` scope from their own account; or the e-mail is taken.');
const TAG = 'Admin: users';

export const listUsersOperation = defineOperation({
  method: 'get', path: USERS, operationId: 'adminListUsers', summary: 'List or search accounts, a page at a time', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  query: listQuery,
  responses: { 200: { description: 'A page of accounts.', body: z.object({ users: z.array(userSchema), next_cursor: z.string().nullable().meta({ description: 'Null on the last page.' }) }) }, 400: VALIDATION_FAILED, ...ADMIN_FAILURES },
});

export const createUserOperation = defineOperation({
  method: 'post', path: USERS, operationId: 'adminCreateUser', summary: 'Create an account', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  body: { schema: createBody, required: true },
  responses: { 201: { description: 'Created.', body: userSchema, headers: { Location: "The account's URL." } }, ...ADMIN_BODY_FAILURES, 409: errorResponse('The username or e-mail is taken.'), ...ADMIN_FAILURES },
});

export const showUserOperation = defineOperation({
  method: 'get', path: `${USERS}/:id`, operationId: 'adminShowUser', summary: 'Show an account', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: userId,
  responses: { 200: { description: 'The account.', body: userSchema }, 404: NO_SUCH_USER, ...ADMIN_FAILURES },
});

export const changeUserOperation = defineOperation({
  method: 'patch', path: `${USERS}/:id`, operationId: 'adminChangeUser', summary: "Change an account's e-mail, scopes, password or disabled state", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: userId,
  body: { schema: changeBody, required: true },
  responses: { 200: { description: 'The account as changed.', body: userSchema }, ...ADMIN_BODY_FAILURES, 404: NO_SUCH_USER, 409: NOT_YOURSELF, ...ADMIN_FAILURES },
});

export const deleteUserOperation = defineOperation({
  method: 'delete', path: `${USERS}/:id`, operationId: 'adminDeleteUser', summary: 'Delete an account (its sign-ins end first)', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: userId,
  responses: { 204: { description: 'Deleted.' }, 404: NO_SUCH_USER, 409: NOT_YOURSELF, ...ADMIN_FAILURES },
});

export const unlockUserOperation = defineOperation({
  method: 'post', path: `${USERS}/:id/unlock`, operationId: 'adminUnlockUser', summary: "Lift an account's sign-in lockouts", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: userId,
  responses: {
    200: { description: 'What was lifted.', body: z.object({ locked_sources: z.number().int().meta({ description: 'Addresses that were locked out of the account.' }), paced: z.boolean().meta({ description: "Whether the account-wide pace was used up." }) }) },
    404: NO_SUCH_USER,
    ...ADMIN_FAILURES,
  },
});

export const signOutUserOperation = defineOperation({
  method: 'post', path: `${USERS}/:id/sign-out`, operationId: 'adminSignOutUser', summary: "End every sign-in of an account (API sessions and OAuth logins)", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: userId,
  responses: { 200: { description: 'What was ended.', body: z.object({ sessions: z.number().int(), logins: z.number().int() }) }, 404: NO_SUCH_USER, ...ADMIN_FAILURES },
});

export function describeUser(user: User): z.input<typeof userSchema> {
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



  route(router, listUsersOperation, [], async (_req, res, { query }) => {
    const { q, limit, cursor } = query;
    const page = await accounts.searchUsers({ ...(q ? { query: q } : {}), ...(cursor ? { cursor } : {}), limit });
    res.set('Cache-Control', 'no-store').json({ users: page.users.map(describeUser), next_cursor: page.nextCursor });
  });

  route(router, createUserOperation, [requireJsonBody()], async (req, res, { body }) => {
    const user = await accounts.createUser({ username: body.username, email: body.email ?? null, password: body.password, ...(body.scopes ? { scopes: body.scopes } : {}) }, adminActor(req));
    res.status(201).set('Cache-Control', 'no-store').location(`${USERS}/${user.id}`).json(describeUser(user));
  });
  router.all(USERS, methodNotAllowed(['GET', 'POST']));

  route(router, showUserOperation, [], async (req, res) => {
    res.set('Cache-Control', 'no-store').json(describeUser(await target(req)));
  });

  route(router, changeUserOperation, [requireJsonBody()], async (req, res, { body: change }) => {
    let user = await target(req);
    const by = adminActor(req);
    // Refused before any change is made, rather than half-way by the service.
    const own = ownAccountRefusal(user, by, { disable: change.disabled === true, ...(change.scopes ? { scopes: change.scopes } : {}) });
    if (own) throw own;
    // E-mail first: the one change another account can refuse (409), before anything is done.
    if (change.email !== undefined && change.email?.toLowerCase() !== user.email?.toLowerCase()) user = await accounts.setEmail(user.username, change.email, by);
    if (change.scopes) user = await accounts.setAllowedScopes(user.username, change.scopes, by);
    if (change.password !== undefined) user = await accounts.changePassword(user.username, change.password, by);
    if (change.disabled !== undefined && change.disabled !== user.disabled) user = await accounts.setDisabled(user.username, change.disabled, by);
    res.set('Cache-Control', 'no-store').json(describeUser(user));
  });

  route(router, deleteUserOperation, [], async (req, res) => {
    const user = await target(req);
    await accounts.deleteUser(user.username, adminActor(req));
    res.status(204).end();
  });
  router.all(`${USERS}/:id`, methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  route(router, unlockUserOperation, [], async (req, res) => {
    const { report } = await signIn.unlock((await target(req)).username, adminActor(req));
    res.set('Cache-Control', 'no-store').json({ locked_sources: report.lockedSources, paced: report.paced });
  });
  router.all(`${USERS}/:id/unlock`, methodNotAllowed(['POST']));

  route(router, signOutUserOperation, [], async (req, res) => {
    const ended = await accounts.endSignIns((await target(req)).username, adminActor(req));
    res.set('Cache-Control', 'no-store').json(ended);
  });
  router.all(`${USERS}/:id/sign-out`, methodNotAllowed(['POST']));

  return router;
}
