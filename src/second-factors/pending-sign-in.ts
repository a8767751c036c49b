import { randomBytes } from 'node:crypto';
import { sha256Base64url } from '../shared/sha256.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

/**
 * A sign-in whose first step passed (a password, or an upstream identity provider) and that waits
 * for the second: who, through which channel, and where to go once done. It lives in the ephemeral
 * store under the digest of a random value only the browser holds (in a cookie), for a few
 * minutes, and is taken out with GETDEL when the second step passes: one browser, one use.
 */
export interface PendingSignIn {
  userId: string;
  /** The channel of the first step: browser (/login), oauth (an authorization or device approval), or a provider's. */
  via: string;
  /** What the second step leads to: a local path (/login), or the interaction it belongs to (oauth). */
  returnTo: string;
  interactionUid?: string;
  /** The account must set up a factor first (the operator's policy): the step is an enrolment. */
  enrol: boolean;
  /** How the first step was made, for the audit log (password, or a provider id). */
  firstFactor: string;
  createdAt: number;
}

export interface PendingSignIns {
  /** Stores a pending sign-in; answers the value for the browser to hold. */
  create(pending: Omit<PendingSignIn, 'createdAt'>): Promise<string>;
  /** The pending sign-in the browser's value names, or null (unknown, expired or used). */
  find(value: string | undefined): Promise<PendingSignIn | null>;
  /** Takes it out, atomically: of concurrent callers exactly one gets it. */
  take(value: string | undefined): Promise<PendingSignIn | null>;
}

const key = (value: string) => `second-factor:pending:${sha256Base64url(value)}`;

export function createPendingSignIns(store: EphemeralStore, options: { ttlSeconds: number; clock?: () => number }): PendingSignIns {
  const clock = options.clock ?? Date.now;
  const parse = (raw: string | null): PendingSignIn | null => {
    if (!raw) return null;
    const pending = JSON.parse(raw) as PendingSignIn;
    return clock() - pending.createdAt <= options.ttlSeconds * 1000 ? pending : null;
  };
  const wellFormed = (value: string | undefined): value is string => typeof value === 'string' && /^[A-Za-z0-9_-]{43}$/.test(value);
  return {
    async create(pending) {
      const value = randomBytes(32).toString('base64url');
      await store.set(key(value), JSON.stringify({ ...pending, createdAt: clock() }), { ttlMs: options.ttlSeconds * 1000 });
      return value;
    },
    async find(value) {
      return wellFormed(value) ? parse(await store.get(key(value))) : null;
    },
    async take(value) {
      return wellFormed(value) ? parse(await store.getDel(key(value))) : null;
    },
  };
}
