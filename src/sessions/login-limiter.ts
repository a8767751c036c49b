import type { Config } from '../config/schema.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

/**
 * Brute-force protection for password logins, counted in the ephemeral store so that the limits
 * hold across nodes: failures per username (then a lockout that doubles with each repeat within a
 * day) and failures per client address. Unknown usernames are counted like known ones, so the
 * answers never tell which accounts exist.
 */
export interface LoginLimiter {
  /** Seconds to wait before this username or address may try again, or 0. */
  retryAfter(username: string, ip: string): Promise<number>;
  /** Records a failed attempt; returns the seconds of a lockout it started, or 0. */
  failed(username: string, ip: string): Promise<number>;
  /** A successful login clears the username's failure count (not its lockout history). */
  succeeded(username: string): Promise<void>;
}

const DAY_MS = 24 * 3600 * 1000;

export function createLoginLimiter(store: EphemeralStore, limits: Config['loginLimits']): LoginLimiter {
  const userKeys = (username: string) => {
    const tag = `{login:${username.toLowerCase()}}`;
    return { failures: `${tag}:failures`, lock: `${tag}:locked`, lockouts: `${tag}:lockouts` };
  };
  const ipKey = (ip: string) => `login:ip:${ip}`;

  return {
    async retryAfter(username, ip) {
      const [lockMs, ipCount] = await Promise.all([store.ttl(userKeys(username).lock), store.get(ipKey(ip))]);
      let wait = lockMs === null ? 0 : Math.ceil(lockMs / 1000);
      if (ipCount !== null && Number(ipCount) >= limits.failuresPerIp) {
        const ipMs = (await store.ttl(ipKey(ip))) ?? 0;
        wait = Math.max(wait, Math.ceil(ipMs / 1000));
      }
      return wait;
    },
    async failed(username, ip) {
      const keys = userKeys(username);
      const [user] = await Promise.all([store.increment(keys.failures, limits.usernameWindowSeconds * 1000), store.increment(ipKey(ip), limits.ipWindowSeconds * 1000)]);
      if (user.count < limits.failuresPerUsername) return 0;
      const lockouts = await store.increment(keys.lockouts, DAY_MS);
      const seconds = Math.min(limits.lockoutSeconds * 2 ** (lockouts.count - 1), limits.maxLockoutSeconds);
      await Promise.all([store.set(keys.lock, '1', { ttlMs: seconds * 1000 }), store.del(keys.failures)]);
      return seconds;
    },
    async succeeded(username) {
      await store.del(userKeys(username).failures);
    },
  };
}
