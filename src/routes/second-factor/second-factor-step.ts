import type { Request, Response } from 'express';
import type { AccountService } from '../../accounts/account-service.ts';
import type { User } from '../../accounts/user.ts';
import type { Config } from '../../config/schema.ts';
import { cookieValue } from '../../credentials/cookies.ts';
import type { PendingSignIn, PendingSignIns } from '../../second-factors/pending-sign-in.ts';
import type { PasskeyService } from '../../second-factors/passkey-service.ts';
import type { SecondFactorService } from '../../second-factors/second-factor-service.ts';

/** The cookie that binds a pending sign-in to the browser that passed its first step. */
export const SECOND_FACTOR_COOKIE = 'tessera_second_factor';

/** What an account needs after its first step: nothing, its second factor, or to set one up (the operator's policy). */
export type SecondStepNeed = 'none' | 'verify' | 'enrol';

export type SecondStepResult =
  | { status: 'passed'; user: User; pending: PendingSignIn; method: 'totp' | 'recovery_code' | 'passkey' }
  | { status: 'failed'; pending: PendingSignIn }
  | { status: 'limited'; retryAfterSeconds: number; limit: number; pending: PendingSignIn }
  /** No pending sign-in for this browser (never begun, expired, used, or for another interaction). */
  | { status: 'expired' };

/**
 * The second step of every browser sign-in, one for all first steps (the password at /login and
 * on the OAuth sign-in page; an upstream identity provider's callback): after the first step
 * passes, `required(user)` says whether a second is needed; if so `begin` keeps a pending sign-in
 * server-side (pending-sign-in.ts) bound to this browser by a cookie, and the channel shows the
 * second-step page; `attempt` checks the answer and, when it passes, takes the pending sign-in
 * out (once). Only then may the channel open a session or record a consent.
 */
export interface SecondFactorStep {
  required(user: User): Promise<SecondStepNeed>;
  begin(res: Response, pending: Omit<PendingSignIn, 'createdAt'>): Promise<void>;
  /** The pending sign-in of this browser (for the interaction `interactionUid` when given), or null. */
  pending(req: Request, interactionUid?: string): Promise<PendingSignIn | null>;
  /** The options of a passkey assertion for this pending sign-in (JSON for the page), or null when the account has no passkey. */
  passkeyOptions(req: Request, pending: PendingSignIn): Promise<string | null>;
  /** Checks a code or recovery code, or a passkey's assertion (`{ passkey }`, as the page's script sends it), against the pending sign-in's account. */
  attempt(req: Request, res: Response, answer: string | { passkey: string }, interactionUid?: string): Promise<SecondStepResult>;
  /** Takes the pending sign-in out once its step was passed otherwise (a passkey, an enrolment); clears the cookie. */
  finish(req: Request, res: Response, interactionUid?: string): Promise<{ pending: PendingSignIn; user: User } | null>;
}

export interface SecondFactorStepDependencies {
  config: Config;
  accounts: Pick<AccountService, 'findUserById'>;
  secondFactors: SecondFactorService;
  passkeys: Pick<PasskeyService, 'authenticationOptions' | 'authenticate'>;
  pendingSignIns: PendingSignIns;
}

export function createSecondFactorStep({ config, accounts, secondFactors, passkeys, pendingSignIns }: SecondFactorStepDependencies): SecondFactorStep {
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure: new URL(config.issuer).protocol === 'https:', path: '/' };
  const presented = (req: Request) => cookieValue(req.headers.cookie, SECOND_FACTOR_COOKIE);
  const matches = (pending: PendingSignIn | null, interactionUid: string | undefined) => (pending && (pending.interactionUid ?? undefined) === interactionUid ? pending : null);
  const activeUser = async (userId: string) => {
    const user = await accounts.findUserById(userId);
    return user && !user.disabled ? user : null;
  };

  return {
    async required(user) {
      if (await secondFactors.hasFactor(user.id)) return 'verify';
      return secondFactors.requiredByPolicy(user) ? 'enrol' : 'none';
    },

    async begin(res, pending) {
      const value = await pendingSignIns.create(pending);
      res.cookie(SECOND_FACTOR_COOKIE, value, { ...cookieOptions, maxAge: config.secondFactor.pendingSeconds * 1000 });
    },

    async pending(req, interactionUid) {
      return matches(await pendingSignIns.find(presented(req)), interactionUid);
    },

    async passkeyOptions(req, pending) {
      const binding = presented(req);
      return binding ? passkeys.authenticationOptions(pending.userId, binding) : null;
    },

    async attempt(req, res, answer, interactionUid) {
      const binding = presented(req);
      const pending = matches(await pendingSignIns.find(binding), interactionUid);
      const user = pending && !pending.enrol ? await activeUser(pending.userId) : null;
      if (!pending || !user || !binding) return { status: 'expired' };
      const context = { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, via: pending.via };
      const check = typeof answer === 'string' ? await secondFactors.check(user, answer, context) : await passkeys.authenticate(user, answer.passkey, binding, context);
      if (check.status === 'failed') return { status: 'failed', pending };
      if (check.status === 'limited') return { ...check, pending };
      // Of two answers passing at once, one takes the pending sign-in; the other starts over.
      const taken = await this.finish(req, res, interactionUid);
      return taken ? { status: 'passed', method: check.method, ...taken } : { status: 'expired' };
    },

    async finish(req, res, interactionUid) {
      const value = presented(req);
      const pending = await pendingSignIns.find(value);
      if (!matches(pending, interactionUid)) return null;
      const taken = await pendingSignIns.take(value);
      res.clearCookie(SECOND_FACTOR_COOKIE, cookieOptions);
      const user = taken && (await activeUser(taken.userId));
      return taken && user ? { pending: taken, user } : null;
    },
  };
}
