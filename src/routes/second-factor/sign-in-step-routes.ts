import express, { Router, type Request, type Response } from 'express';
import type { User } from '../../accounts/user.ts';
import type { Config } from '../../config/schema.ts';
import { cookieValue } from '../../credentials/cookies.ts';
import { createCsrf } from '../../http/csrf.ts';
import { answerOutagesWithPages } from '../../http/error-response.ts';
import { sendPage } from '../../http/pages.ts';
import type { SecondFactorService } from '../../second-factors/second-factor-service.ts';
import { AppError } from '../../shared/errors.ts';
import { rateLimitHeaders } from '../../shared/rate-limit-headers.ts';
import type { BrowserSessionStarter } from '../settings/browser-session.ts';
import { recoveryCodesPage, secondStepPage, totpEnrolPage } from './second-factor-pages.ts';
import { SECOND_FACTOR_COOKIE, type SecondFactorStep } from './second-factor-step.ts';
import type { PendingSignIn } from '../../second-factors/pending-sign-in.ts';

export interface SignInStepRouteDependencies {
  config: Config;
  secondStep: SecondFactorStep;
  secondFactors: SecondFactorService;
  startSession: BrowserSessionStarter;
  findUserById(id: string): Promise<User | null>;
  csrfKey: string;
}

/** Wrong-code and limit messages shared by the browser channels. */
export const WRONG_CODE = 'That code is not right, or was used already (or the passkey did not verify). Type the code your app shows now, or a recovery code.';

/** The answer a second-step form carries: a passkey's assertion (JSON, from the page's script), or a code. */
export function stepAnswer(body: unknown): string | { passkey: string } {
  const fields = (body ?? {}) as Record<string, unknown>;
  return typeof fields.passkey === 'string' && fields.passkey !== '' ? { passkey: fields.passkey } : String(fields.code ?? '');
}
export const tooManyCodes = (retryAfterSeconds: number) => `Too many wrong codes. Try again in ${Math.max(1, Math.ceil(retryAfterSeconds / 60))} minutes.`;

/**
 * The second step of the settings sign-in (/login): `/login/second-factor` asks for a code or
 * recovery code, `/login/second-factor/enrol` sets up an authenticator app when the operator's
 * policy requires one before any session. Both work on the pending sign-in /login began; the
 * browser session is opened only once the step has passed.
 */
export function createSignInStepRoutes({ secondStep, secondFactors, startSession, findUserById, csrfKey }: SignInStepRouteDependencies): Router {
  const router = Router();
  const csrf = createCsrf(csrfKey);
  // The forms are bound to the pending sign-in's cookie (a value only this browser holds).
  const tokenFor = (req: Request) => csrf.tokenFor('second-factor', cookieValue(req.headers.cookie, SECOND_FACTOR_COOKIE) ?? '');
  const csrfValid = (req: Request) => csrf.verify('second-factor', cookieValue(req.headers.cookie, SECOND_FACTOR_COOKIE) ?? '', (req.body as Record<string, unknown> | undefined)?.csrf);
  const form = express.urlencoded({ extended: false, limit: '10kb' });
  const startOver = (res: Response) => res.redirect(303, '/login');

  router.use('/login/second-factor', (_req, res, next) => {
    answerOutagesWithPages(res);
    next();
  });

  const renderStep = async (req: Request, res: Response, status: number, pending: PendingSignIn, error?: string) => {
    const user = await findUserById(pending.userId);
    const passkeyOptions = await secondStep.passkeyOptions(req, pending);
    sendPage(res, status, secondStepPage({ action: '/login/second-factor', csrf: tokenFor(req), username: user?.username ?? '', passkeyOptions, ...(error ? { error } : {}), exit: { action: '/login/second-factor/cancel', csrf: tokenFor(req), label: 'Cancel and start over' } }));
  };

  router.get('/login/second-factor', async (req, res, next) => {
    try {
      const pending = await secondStep.pending(req);
      if (!pending) return startOver(res);
      if (pending.enrol) return res.redirect(303, '/login/second-factor/enrol');
      await renderStep(req, res, 200, pending);
    } catch (error) {
      next(error);
    }
  });

  router.post('/login/second-factor', form, async (req, res, next) => {
    try {
      const pending = await secondStep.pending(req);
      if (!pending || pending.enrol) return startOver(res);
      if (!csrfValid(req)) return await renderStep(req, res, 403, pending, 'The form expired. Please try again.');
      const result = await secondStep.attempt(req, res, stepAnswer(req.body));
      if (result.status === 'expired') return startOver(res);
      if (result.status === 'limited') {
        res.set(rateLimitHeaders(result.limit, result.retryAfterSeconds));
        return await renderStep(req, res, 429, pending, tooManyCodes(result.retryAfterSeconds));
      }
      if (result.status === 'failed') return await renderStep(req, res, 401, pending, WRONG_CODE);
      await startSession(req, res, result.user);
      res.redirect(303, result.pending.returnTo);
    } catch (error) {
      next(error);
    }
  });

  router.post('/login/second-factor/cancel', form, async (req, res, next) => {
    try {
      if (csrfValid(req)) await secondStep.finish(req, res);
      startOver(res);
    } catch (error) {
      next(error);
    }
  });

  /** The pending sign-in that must enrol, and its account; null sends the browser back to /login. */
  const enrolling = async (req: Request) => {
    const pending = await secondStep.pending(req);
    const user = pending?.enrol ? await findUserById(pending.userId) : null;
    return pending && user && !user.disabled ? { pending, user } : null;
  };

  const renderEnrol = async (req: Request, res: Response, status: number, user: User, error?: string) => {
    const { secret, uri } = await secondFactors.beginTotp(user);
    sendPage(res, status, totpEnrolPage({ action: '/login/second-factor/enrol', csrf: tokenFor(req), secret, uri, required: true, ...(error ? { error } : {}) }));
  };

  router.get('/login/second-factor/enrol', async (req, res, next) => {
    try {
      const found = await enrolling(req);
      if (!found) return startOver(res);
      await renderEnrol(req, res, 200, found.user);
    } catch (error) {
      next(error);
    }
  });

  router.post('/login/second-factor/enrol', form, async (req, res, next) => {
    try {
      const found = await enrolling(req);
      if (!found) return startOver(res);
      if (!csrfValid(req)) return await renderEnrol(req, res, 403, found.user, 'The form expired. Please try again.');
      let codes: string[];
      try {
        ({ recoveryCodes: codes } = await secondFactors.confirmTotp(found.user, String((req.body as Record<string, unknown>).code ?? ''), { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null }));
      } catch (error) {
        if (!(error instanceof AppError) || (error.status !== 400 && error.status !== 429)) throw error;
        if (error.headers) res.set(error.headers);
        return await renderEnrol(req, res, error.status, found.user, error.status === 429 ? 'Too many wrong codes. Try again later.' : 'That code is not right: type the 6 digits the app shows now.');
      }
      // Set up with a code from the app: that was the second step too.
      const finished = await secondStep.finish(req, res);
      if (!finished) return startOver(res);
      await startSession(req, res, finished.user);
      sendPage(res, 201, recoveryCodesPage({ codes, continueHref: finished.pending.returnTo, enrolled: true }));
    } catch (error) {
      next(error);
    }
  });

  return router;
}
