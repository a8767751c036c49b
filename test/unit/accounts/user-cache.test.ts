import { describe, expect, it } from '@jest/globals';
import { createUserCache } from '../../../src/accounts/user-cache.ts';
import type { User } from '../../../src/accounts/user.ts';
import { invalidationTarget } from '../../../src/cache/invalidations.ts';

// The user cache over a table the test controls and counts (the real wiring runs in the
// integration tests of introspection and the token endpoint).
function setup() {
  const table = new Map<string, User>();
  let loads = 0;
  const users = createUserCache(async (id) => {
    loads += 1;
    const user = table.get(id);
    return user ? structuredClone(user) : null;
  });
  users.channelState('up');
  return { users, table, loads: () => loads };
}

const alice: User = {
  id: 'u-1',
  username: 'alice',
  email: null,
  allowedScopes: ['read', 'deposit:write'],
  disabled: false,
  createdAt: new Date('2026-01-02T03:04:05Z'),
  updatedAt: new Date('2026-02-02T03:04:05Z'),
  passwordChangedAt: new Date('2026-03-02T03:04:05Z'),
};

describe('the user cache', () => {
  it('findUserById gives a User of the caller\'s own, with real dates', async () => {
    const t = setup();
    t.table.set(alice.id, alice);
    const one = await t.users.findUserById(alice.id);
    expect(one).toEqual(alice);
    expect(one!.createdAt).toBeInstanceOf(Date);
    one!.allowedScopes.push('changed by a caller');
    expect((await t.users.findUserById(alice.id))!.allowedScopes).toEqual(['read', 'deposit:write']);
    expect(t.loads()).toBe(1);
  });

  it('peekUser gives the same frozen standing on every call, and a fresh one after an invalidation', async () => {
    const t = setup();
    t.table.set(alice.id, alice);
    const standing = await t.users.peekUser(alice.id);
    expect(standing).toMatchObject({ id: 'u-1', username: 'alice', allowedScopes: ['read', 'deposit:write'], disabled: false });
    expect(Object.isFrozen(standing)).toBe(true);
    expect(Object.isFrozen(standing!.allowedScopes)).toBe(true);
    expect(() => (standing!.allowedScopes as string[]).push('admin')).toThrow(TypeError);
    expect(await t.users.peekUser(alice.id)).toBe(standing);
    expect(t.loads()).toBe(1);

    t.table.set(alice.id, { ...alice, disabled: true });
    t.users.invalidate([invalidationTarget.user(alice.id)]);
    expect(await t.users.peekUser(alice.id)).toMatchObject({ disabled: true });
    expect(t.loads()).toBe(2);
    expect(await t.users.peekUser('nobody')).toBeNull();
  });
});
