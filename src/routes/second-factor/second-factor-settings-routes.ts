import { Router, type Request, type Response } from 'express';
import type { AccountService } from '../../accounts/account-service.ts';
import { ADMIN_SCOPE } from '../../config/admin-scope.ts';
import { sendPage } from '../../http/pages.ts';
import { answerOutagesWithPages } from '../../http/error-response.ts';
import type { SecondFactorService } from '../../second-factors/second-factor-service.ts';
import { AppError } from '../../shared/errors.ts';
import type { CallerAuthenticator } from '../settings/caller.ts';
import type { PasskeyService } from '../../second-factors/passkey-service.ts';
import { recoveryCodesPage, totpEnrolPage, twoFactorSettingsPage } from './second-factor-pages.ts';

export interface SecondFactorSettingsDependencies {
  accounts: Pick<AccountService, 'authenticate'>;
  secondFactors: SecondFactorService;
  callers: CallerAuthenticator;
  /** Passkeys (WebAuthn): listed, registered and removed here too. */
  passkeys: PasskeyService;
}

/**
 * /settings/two-factor: set up an authenticator app (QR code and key, confirmed with a code before
 * it counts), see how many recovery codes are left and make new ones, remove the app (with the
 * password or a current code). Every change is audited (second_factor.*: docs/audit.md).
 */
export function createSecondFactorSettingsRoutes({ accounts, secondFactors, callers, passkeys }: SecondFactorSettingsDependencies): Router {
  const router = Router();
  const page = callers.requireLoginSession('page');
  const viewer = (req: Request) => ({ username: req.caller!.user.username, csrf: callers.csrfFor(req.caller!.sessionId!), admin: req.caller!.scopes.includes(ADMIN_SCOPE) });
  const actor = (req: Request) => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
  const field = (req: Request, name: string) => String((req.body as Record<string, unknown> | undefined)?.[name] ?? '');

  router.use('/settings/two-factor', (_req, res, next) => {
    answerOutagesWithPages(res);
    next();
  });

  /** Under the operator's policy an account keeps at least one factor: the last one is not removed (409). */
  const keepsOneFactor = async (req: Request, removing: 'totp' | 'passkey') => {
    const { user } = req.caller!;
    if (!secondFactors.requiredByPolicy(user)) return;
    const app = (await secondFactors.status(user.id)).totp === 'active' ? 1 : 0;
    const keys = (await passkeys.list(user.id)).length;
    const left = app + keys - 1;
    if (left < 1) throw AppError.conflict(`Your account must use two-step sign-in: add ${removing === 'totp' ? 'a passkey' : 'an authenticator app or another passkey'} before removing this one.`);
  };

  const renderSettings = async (req: Request, res: Response, status = 200, extra: { notice?: string; error?: string } = {}) => {
    const { user } = req.caller!;
    sendPage(
      res,
      status,
      twoFactorSettingsPage({
        ...viewer(req),
        status: await secondFactors.status(user.id),
        passkeys: { list: await passkeys.list(user.id), registrationOptions: await passkeys.registrationOptions(user) },
        required: secondFactors.requiredByPolicy(user),
        ...extra,
      }),
    );
  };

  const renderEnrol = async (req: Request, res: Response, status = 200, error?: string) => {
    const { secret, uri } = await secondFactors.beginTotp(req.caller!.user);
    sendPage(res, status, totpEnrolPage({ action: '/settings/two-factor/totp/confirm', csrf: viewer(req).csrf, secret, uri, viewer: viewer(req), ...(error ? { error } : {}) }));
  };

  router.get('/settings/two-factor', page, async (req, res, next) => {
    try {
      await renderSettings(req, res);
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/two-factor/totp', page, async (req, res, next) => {
    try {
      if ((await secondFactors.status(req.caller!.user.id)).totp === 'active') return await renderSettings(req, res, 409, { error: 'An authenticator app is already set up.' });
      await renderEnrol(req, res);
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/two-factor/totp/confirm', page, async (req, res, next) => {
    try {
      try {
        const { recoveryCodes } = await secondFactors.confirmTotp(req.caller!.user, field(req, 'code'), actor(req));
        sendPage(res, 201, recoveryCodesPage({ codes: recoveryCodes, continueHref: '/settings/two-factor', viewer: viewer(req), enrolled: true }));
      } catch (error) {
        if (!(error instanceof AppError) || (error.status !== 400 && error.status !== 429)) throw error;
        if (error.headers) res.set(error.headers);
        await renderEnrol(req, res, error.status, error.status === 429 ? 'Too many wrong codes. Try again later.' : 'That code is not right: type the 6 digits the app shows now.');
      }
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/two-factor/recovery-codes', page, async (req, res, next) => {
    try {
      const codes = await secondFactors.regenerateRecoveryCodes(req.caller!.user, actor(req));
      sendPage(res, 201, recoveryCodesPage({ codes, continueHref: '/settings/two-factor', viewer: viewer(req) }));
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/two-factor/totp/remove', page, async (req, res, next) => {
    try {
      const { user } = req.caller!;
      try {
        await keepsOneFactor(req, 'totp');
        const proof = await secondFactors.proveOwnership(user, field(req, 'proof'), actor(req), async (password) => (await accounts.authenticate(user.username, password)).ok);
        await secondFactors.removeTotp(user, actor(req), proof);
      } catch (error) {
        if (!(error instanceof AppError) || ![401, 404, 409, 429].includes(error.status)) throw error;
        if (error.headers) res.set(error.headers);
        return await renderSettings(req, res, error.status, { error: error.status === 429 ? 'Too many wrong answers. Try again later.' : error.message });
      }
      await renderSettings(req, res, 200, { notice: 'The authenticator app was removed, with its recovery codes.' });
    } catch (error) {
      next(error);
    }
  });

  // A passkey: the page's script posts the browser's answer to the options the page carried.
  router.post('/settings/two-factor/passkeys', page, async (req, res, next) => {
    try {
      try {
        const added = await passkeys.register(req.caller!.user, field(req, 'response'), field(req, 'name'), actor(req));
        await renderSettings(req, res, 201, { notice: `Passkey “${added.name}” added.` });
      } catch (error) {
        if (!(error instanceof AppError) || error.status !== 400) throw error;
        await renderSettings(req, res, 400, { error: error.errors?.[0]?.message ?? error.message });
      }
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/two-factor/passkeys/:id/remove', page, async (req, res, next) => {
    try {
      const { user } = req.caller!;
      try {
        await keepsOneFactor(req, 'passkey');
        const proof = await secondFactors.proveOwnership(user, field(req, 'proof'), actor(req), async (password) => (await accounts.authenticate(user.username, password)).ok);
        await passkeys.remove(user, String(req.params.id), actor(req), proof);
      } catch (error) {
        if (!(error instanceof AppError) || ![401, 404, 409, 429].includes(error.status)) throw error;
        if (error.headers) res.set(error.headers);
        return await renderSettings(req, res, error.status, { error: error.status === 429 ? 'Too many wrong answers. Try again later.' : error.message });
      }
      await renderSettings(req, res, 200, { notice: 'The passkey was removed.' });
    } catch (error) {
      next(error);
    }
  });

  return router;
}
