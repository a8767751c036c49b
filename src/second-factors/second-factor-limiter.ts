import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

/**
 * A limit on wrong second-factor answers (codes, recovery codes, passkey assertions) per account,
 * counted in the ephemeral store so that it holds across nodes: past `failures` within the window
 * every answer is refused until the window ends, whichever browser or client sends it. A correct
 * answer clears the count. The password step before it has its own limits (login-limiter.ts).
 */
export interface SecondFactorLimiter {
  /** null, or the seconds until answers are taken again. */
  check(userId: string): Promise<{ retryAfterSeconds: number; limit: number } | null>;
  failed(userId: string): Promise<void>;
  succeeded(userId: string): Promise<void>;
}

export function createSecondFactorLimiter(store: EphemeralStore, limits: { failures: number; windowSeconds: number }): SecondFactorLimiter {
  const key = (userId: string) => `{second-factor:${userId}}:failures`;
  return {
    async check(userId) {
      const count = Number((await store.get(key(userId))) ?? 0);
      if (count < limits.failures) return null;
      const ttl = await store.ttl(key(userId));
      return { retryAfterSeconds: Math.max(1, Math.ceil((ttl ?? 1000) / 1000)), limit: limits.failures };
    },
    async failed(userId) {
      await store.increment(key(userId), limits.windowSeconds * 1000);
    },
    async succeeded(userId) {
      await store.del(key(userId));
    },
  };
}
