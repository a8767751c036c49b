import { randomBytes, randomInt } from 'node:crypto';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { AppError } from '../shared/errors.ts';
import { sha256Base64url } from '../shared/sha256.ts';
import type { SecondFactorLimiter } from './second-factor-limiter.ts';
import type { SecondFactorRepository } from './second-factor-repository.ts';
import type { SecretBox } from './secret-box.ts';
import { base32Encode, generateTotpSecret, matchingTotpStep, normaliseTotpCode, otpauthUri } from './totp.ts';

/** Who asked, for the audit log. */
export interface SecondFactorActor {
  ip: string | null;
  userAgent: string | null;
}

/** Where a second factor was asked for: the sign-in channels (password-sign-in.ts), and `settings` (removing one). */
export type SecondFactorChannel = 'api' | 'browser' | 'oauth' | 'settings' | (string & {});

/** What an account has. */
export interface SecondFactorStatus {
  totp: 'none' | 'pending' | 'active';
  recoveryCodesLeft: number;
}

export type SecondFactorCheck =
  | { status: 'passed'; method: 'totp' | 'recovery_code' }
  /** Wrong, reused, or the account has no factor. */
  | { status: 'failed' }
  | { status: 'limited'; retryAfterSeconds: number; limit: number };

export interface TotpEnrolment {
  /** The key in base32, for typing into an app. */
  secret: string;
  /** The otpauth:// URI the QR code carries. */
  uri: string;
}

export interface SecondFactorService {
  status(userId: string): Promise<SecondFactorStatus>;
  /** Whether the account has a confirmed factor, which every sign-in must then pass. */
  hasFactor(userId: string): Promise<boolean>;
  /** Whether the operator's policy (secondFactor.requiredForScopes) demands a factor of this account. */
  requiredByPolicy(user: Pick<User, 'allowedScopes'>): boolean;
  /** Starts (or shows again) the enrolment of an authenticator app; 409 when one is active. */
  beginTotp(user: User): Promise<TotpEnrolment>;
  /** Confirms the enrolment with a code from the app; answers the recovery codes, shown once. 400 on a wrong code. */
  confirmTotp(user: User, code: string, actor: SecondFactorActor): Promise<{ recoveryCodes: string[] }>;
  /** Removes the app and the recovery codes; the caller has checked the password or a code. */
  removeTotp(user: User, actor: SecondFactorActor, proof: 'password' | 'code'): Promise<void>;
  /** A new set of recovery codes (the old ones stop working). */
  regenerateRecoveryCodes(user: User, actor: SecondFactorActor): Promise<string[]>;
  /**
   * Proves, for removing a factor, that the signed-in person holds the account: a current code or
   * recovery code (spent), or the password (`checkPassword`). Wrong answers count in the same
   * limit as at sign-in. Answers how it was proved; 401 when wrong, 429 when limited.
   */
  proveOwnership(user: User, proof: string, actor: SecondFactorActor, checkPassword: (password: string) => Promise<boolean>): Promise<'code' | 'password'>;
  /**
   * Checks a second-factor answer: a code from the app, or a recovery code (spent). Limited per
   * account; audited as sign_in.second_factor.succeeded, .failed, .locked.
   */
  check(user: User, answer: string, context: SecondFactorActor & { via: SecondFactorChannel }): Promise<SecondFactorCheck>;
}

export interface SecondFactorServiceOptions {
  repository: SecondFactorRepository;
  /** The box sealing TOTP keys (resolved on first use: it needs the configured or generated secrets). */
  box: () => Promise<SecretBox>;
  limiter: SecondFactorLimiter;
  audit: Pick<AuditLog, 'record' | 'recordInBackground'>;
  /** The name apps show beside the account (the issuer's host by default). */
  issuerLabel: string;
  requiredForScopes: readonly string[];
  /** Whether the account has a factor of another kind (a passkey: passkey-service.ts). */
  hasOtherFactor?: (userId: string) => Promise<boolean>;
  /** Milliseconds since the epoch; tests inject one. */
  clock?: () => number;
}

export const RECOVERY_CODE_COUNT = 10;
/** Recovery codes: 10 characters of a 32-letter alphabet (50 bits), shown as xxxxx-xxxxx. */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const RECOVERY_CODE = /^[a-z0-9]{5}-?[a-z0-9]{5}$/;

function newRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < 10; i++) code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** The digest a recovery code is stored and looked up by (its canonical form: lower case, with the dash). */
function recoveryDigest(code: string): string {
  const plain = code.toLowerCase().replace(/[\s-]/g, '');
  return sha256Base64url(`tessera-recovery:${plain.slice(0, 5)}-${plain.slice(5)}`);
}

/** The second factors of accounts: enrolment, removal, and the check every sign-in channel makes. */
export function createSecondFactorService(options: SecondFactorServiceOptions): SecondFactorService {
  const { repository, limiter, audit, issuerLabel, requiredForScopes } = options;
  const clock = options.clock ?? Date.now;
  let opened: Promise<SecretBox> | undefined;
  const secretBox = () => (opened ??= options.box());

  const openSecret = async (userId: string, sealed: string) => (await secretBox()).open(sealed, `totp:${userId}`);
  const event = (user: User, action: string, actor: SecondFactorActor, details: Record<string, unknown>) =>
    audit.record({ actor: `user:${user.id}`, action, subject: `user:${user.id}`, ip: actor.ip, userAgent: actor.userAgent, details });

  async function issueRecoveryCodes(user: User): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await repository.replaceRecoveryCodes(user.id, codes.map(recoveryDigest));
    return codes;
  }

  /** Spends the app's code if it is right and unused; re-seals the key under the newest key of the ring when it was sealed with an older one. */
  async function spendCode(userId: string, code: string, confirmed: boolean): Promise<boolean> {
    const factor = await repository.findTotp(userId);
    if (!factor || (factor.confirmedAt !== null) !== confirmed) return false;
    const box = await secretBox();
    const secret = await openSecret(userId, factor.secretSealed);
    const step = matchingTotpStep(secret, code, clock());
    if (step === null) return false;
    const resealed = box.sealedWithOlderKey(factor.secretSealed) ? box.seal(secret, `totp:${userId}`) : undefined;
    return repository.spendTotpStep(userId, step, { confirmed, ...(resealed ? { resealed } : {}) });
  }

  return {
    async status(userId) {
      const factor = await repository.findTotp(userId);
      const totp = !factor ? 'none' : factor.confirmedAt ? 'active' : 'pending';
      return { totp, recoveryCodesLeft: totp === 'active' ? await repository.countRecoveryCodes(userId) : 0 };
    },

    async hasFactor(userId) {
      if ((await repository.findTotp(userId))?.confirmedAt != null) return true;
      return options.hasOtherFactor ? options.hasOtherFactor(userId) : false;
    },

    requiredByPolicy(user) {
      return user.allowedScopes.some((scope) => requiredForScopes.includes(scope));
    },

    async beginTotp(user) {
      const existing = await repository.findTotp(user.id);
      if (existing?.confirmedAt) throw AppError.conflict('An authenticator app is already set up: remove it first.');
      let secret: Buffer;
      if (existing) {
        secret = await openSecret(user.id, existing.secretSealed);
      } else {
        secret = generateTotpSecret();
        if (!(await repository.beginTotp(user.id, (await secretBox()).seal(secret, `totp:${user.id}`)))) throw AppError.conflict('An authenticator app is already set up: remove it first.');
      }
      return { secret: base32Encode(secret), uri: otpauthUri({ secret, issuer: issuerLabel, account: user.username }) };
    },

    async confirmTotp(user, input, actor) {
      const refusal = await limiter.check(user.id);
      if (refusal) throw AppError.tooManyRequests(refusal.retryAfterSeconds, refusal.limit);
      const code = normaliseTotpCode(input);
      if (!code || !(await spendCode(user.id, code, false))) {
        await limiter.failed(user.id);
        throw AppError.validation([{ field: 'code', code: 'wrong_code', message: 'That code is not right: type the 6 digits the app shows now.' }]);
      }
      await limiter.succeeded(user.id);
      const recoveryCodes = await issueRecoveryCodes(user);
      await event(user, 'second_factor.enrolled', actor, { method: 'totp', recoveryCodes: recoveryCodes.length });
      return { recoveryCodes };
    },

    async removeTotp(user, actor, proof) {
      if (!(await repository.removeTotp(user.id))) throw AppError.notFound('No authenticator app is set up.');
      await event(user, 'second_factor.removed', actor, { method: 'totp', proof });
    },

    async regenerateRecoveryCodes(user, actor) {
      if (!(await this.hasFactor(user.id))) throw AppError.conflict('Set up an authenticator app first.');
      const codes = await issueRecoveryCodes(user);
      await event(user, 'second_factor.recovery_codes_replaced', actor, { count: codes.length });
      return codes;
    },

    async proveOwnership(user, proof, actor, checkPassword) {
      const codeShaped = normaliseTotpCode(proof) !== null || RECOVERY_CODE.test(proof.trim().toLowerCase());
      if (codeShaped) {
        const result = await this.check(user, proof, { ...actor, via: 'settings' });
        if (result.status === 'limited') throw AppError.tooManyRequests(result.retryAfterSeconds, result.limit);
        if (result.status === 'passed') return 'code';
      } else {
        const refusal = await limiter.check(user.id);
        if (refusal) throw AppError.tooManyRequests(refusal.retryAfterSeconds, refusal.limit);
        if (await checkPassword(proof)) return 'password';
        await limiter.failed(user.id);
      }
      throw new AppError(401, 'wrong_proof', 'That is neither your password nor a current code.');
    },

    async check(user, answer, { ip, userAgent, via }) {
      const record = (action: string, details: Record<string, unknown>) =>
        audit.recordInBackground({ actor: `user:${user.id}`, action, subject: `user:${user.id}`, ip, userAgent, details: { via, ...details } });
      const refusal = await limiter.check(user.id);
      if (refusal) {
        record('sign_in.second_factor.locked', { retryAfterSeconds: refusal.retryAfterSeconds, limit: refusal.limit });
        return { status: 'limited', ...refusal };
      }
      const trimmed = answer.trim().slice(0, 64);
      const code = normaliseTotpCode(trimmed);
      let method: 'totp' | 'recovery_code' | null = null;
      if (code) {
        if (await spendCode(user.id, code, true)) method = 'totp';
      } else if (RECOVERY_CODE.test(trimmed.toLowerCase()) && (await this.hasFactor(user.id))) {
        if (await repository.spendRecoveryCode(user.id, recoveryDigest(trimmed))) method = 'recovery_code';
      }
      if (!method) {
        await limiter.failed(user.id);
        record('sign_in.second_factor.failed', { method: code ? 'totp' : 'recovery_code' });
        return { status: 'failed' };
      }
      await limiter.succeeded(user.id);
      const left = method === 'recovery_code' ? await repository.countRecoveryCodes(user.id) : undefined;
      record('sign_in.second_factor.succeeded', { method, ...(left === undefined ? {} : { recoveryCodesLeft: left }) });
      return { status: 'passed', method };
    },
  };
}

/** A random opaque value for cookies and keys (base64url, 256 bits). */
export function opaqueToken(): string {
  return randomBytes(32).toString('base64url');
}
