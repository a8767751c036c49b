import { invalidationTarget } from '../cache/invalidations.ts';
import { createRecordCache, type RecordCache } from '../cache/record-cache.ts';
import type { Awaitable } from '../shared/awaitable.ts';
import type { User, UserStanding } from './user.ts';

export type UserCache = Omit<RecordCache<User>, 'get' | 'peek'> & {
  /** The user (disabled ones too, as the accounts service answers), or null. */
  findUserById(id: string): Promise<User | null>;
  /**
   * The cached record itself (deep-frozen; dates left as text), at once when memory holds it: for
   * the paths that read a user's standing on every request, without the copy findUserById makes.
   */
  peekUser(id: string): Awaitable<UserStanding | null>;
};

/**
 * Users by id in memory, for the paths that look a user up on every request (the token endpoint,
 * introspection). Any change to a user publishes their invalidation target (core.ts), which
 * drops them on every node at once.
 */
export function createUserCache(findUserById: (id: string) => Promise<User | null>, options: { clock?: () => number } = {}): UserCache {
  const cache = createRecordCache<User>({ load: findUserById, target: invalidationTarget.user, ...options });
  return {
    invalidate: (targets) => cache.invalidate(targets),
    channelState: (state) => cache.channelState(state),
    async findUserById(id) {
      const user = await cache.get(id);
      return user && { ...user, createdAt: new Date(user.createdAt), updatedAt: new Date(user.updatedAt), passwordChangedAt: new Date(user.passwordChangedAt) };
    },
    peekUser: (id) => cache.peek(id),
  };
}
