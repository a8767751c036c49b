import { isIPv6 } from 'node:net';
import type { Config } from '../config/schema.ts';
import { sha256Base64url } from '../shared/sha256.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

/**
 * Brute-force protection for password sign-in, counted in the ephemeral store so that the limits
 * hold across nodes. An attacker must not be able to lock the owner out (docs/design/sign-in-throttling.md):
 *
 * - failures are counted per account *and* source (the client address): a source that fails too
 *   often is locked out of that account, doubling with each repeat within a day;
 * - all sources together may fail an account only at a slow pace; past it, sources the account
 *   has not signed in from are refused until the window ends;
 * - a source that has signed in to the account before keeps its own budget: only its own
 *   failures can lock it out;
 * - and one source may fail so many times an hour across all accounts (password spraying).
 *
 * An account is one bucket whatever name addresses it (`loginAccountKey`); a name no account has
 * is counted like an account, so the answers never tell which accounts exist.
 */
export interface LoginLimiter {
  /** Whether this source may try a password on this account now: null, or the refusal. */
  check(account: string, source: string): Promise<LoginRefusal | null>;
  /** Records a failed attempt; returns the seconds of a lockout of this source it started, or 0. */
  failed(account: string, source: string): Promise<number>;
  /** A success clears the source's failure count (not its lockout history) and marks it known. */
  succeeded(account: string, source: string): Promise<void>;
  /** Lifts every lockout of the account and its paced failures (`tessera user unlock`). */
  unlock(account: string): Promise<UnlockReport>;
}

/** Why an attempt is refused: the limit reached and when it resets. */
export interface LoginRefusal {
  retryAfterSeconds: number;
  limit: number;
}

export interface UnlockReport {
  /** Sources that were locked out of the account. */
  lockedSources: number;
  /** Whether the account-wide pace was used up (new sources were refused). */
  paced: boolean;
}

/** The bucket of a sign-in: the account the name addresses, or the name itself when no account has it. */
export function loginAccountKey(user: { id: string } | null, login: string): string {
  return user ? `user:${user.id}` : `name:${sha256Base64url(login.toLowerCase())}`;
}

/**
 * The source a client address counts as: an IPv4 address itself, an IPv6 address by its /64
 * (what one subscriber or host is given: an attacker walking through their own prefix is still
 * one source). Anything else (no address known) as it is.
 */
export function signInSource(address: string): string {
  if (!isIPv6(address)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

const DAY_MS = 24 * 3600 * 1000;

export function createLoginLimiter(store: EphemeralStore, limits: Config['loginLimits']): LoginLimiter {
  // One hash tag per account: its keys live in one Redis Cluster slot.
  const accountKeys = (account: string) => {
    const tag = `{login:${account}}`;
    return { failures: `${tag}:failures`, sources: `${tag}:sources`, tag };
  };
  const sourceKeys = (account: string, source: string) => {
    const { tag } = accountKeys(account);
    const prefix = `${tag}:source:${source}`;
    return { failures: `${prefix}:failures`, lock: `${prefix}:locked`, lockouts: `${prefix}:lockouts`, known: `${tag}:known:${source}` };
  };
  const ipKey = (source: string) => `login:ip:${source}`;
  const seconds = (ms: number | null) => Math.ceil((ms ?? 0) / 1000);

  return {
    async check(account, source) {
      const own = sourceKeys(account, source);
      const shared = accountKeys(account);
      const [lockMs, [known, accountFailures], ipFailures] = await Promise.all([store.ttl(own.lock), store.getMany([own.known, shared.failures]), store.get(ipKey(source))]);
      if (lockMs !== null) return { retryAfterSeconds: Math.max(1, seconds(lockMs)), limit: limits.failuresPerUsername };
      // A source the account has signed in from is refused only by its own failures.
      if (known !== null) return null;
      const refusals: Promise<LoginRefusal>[] = [];
      if (Number(accountFailures ?? 0) >= limits.failuresPerAccount) refusals.push(store.ttl(shared.failures).then((ms) => ({ retryAfterSeconds: seconds(ms), limit: limits.failuresPerAccount })));
      if (Number(ipFailures ?? 0) >= limits.failuresPerIp) refusals.push(store.ttl(ipKey(source)).then((ms) => ({ retryAfterSeconds: seconds(ms), limit: limits.failuresPerIp })));
      const longest = (await Promise.all(refusals)).filter((r) => r.retryAfterSeconds > 0).sort((a, b) => b.retryAfterSeconds - a.retryAfterSeconds)[0];
      return longest ?? null;
    },

    async failed(account, source) {
      const own = sourceKeys(account, source);
      const shared = accountKeys(account);
      const [mine] = await Promise.all([
        store.increment(own.failures, limits.usernameWindowSeconds * 1000),
        store.increment(shared.failures, limits.accountWindowSeconds * 1000),
        store.increment(ipKey(source), limits.ipWindowSeconds * 1000),
        // The sources that failed, so that an unlock finds their keys.
        store.addToSet(shared.sources, source, DAY_MS),
      ]);
      if (mine.count < limits.failuresPerUsername) return 0;
      const lockouts = await store.increment(own.lockouts, DAY_MS);
      const lockSeconds = Math.min(limits.lockoutSeconds * 2 ** (lockouts.count - 1), limits.maxLockoutSeconds);
      await Promise.all([store.set(own.lock, '1', { ttlMs: lockSeconds * 1000 }), store.del(own.failures)]);
      return lockSeconds;
    },

    async succeeded(account, source) {
      const own = sourceKeys(account, source);
      await Promise.all([store.del(own.failures), store.set(own.known, '1', { ttlMs: limits.knownSourceDays * DAY_MS })]);
    },

    async unlock(account) {
      const shared = accountKeys(account);
      const sources = await store.setMembers(shared.sources);
      const own = sources.map((source) => sourceKeys(account, source));
      const [locks, [accountFailures]] = await Promise.all([own.length ? store.getMany(own.map((keys) => keys.lock)) : Promise.resolve([]), store.getMany([shared.failures])]);
      await store.del(shared.failures, shared.sources, ...own.flatMap((keys) => [keys.failures, keys.lock, keys.lockouts]));
      return { lockedSources: locks.filter((lock) => lock !== null).length, paced: Number(accountFailures ?? 0) >= limits.failuresPerAccount };
    },
  };
}
