import { generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse, type AuthenticationResponseJSON, type RegistrationResponseJSON } from '@simplewebauthn/server';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { AppError } from '../shared/errors.ts';
import { sha256Base64url } from '../shared/sha256.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { PasskeyRepository, StoredPasskey } from './passkey-repository.ts';
import type { SecondFactorLimiter } from './second-factor-limiter.ts';
import type { SecondFactorActor, SecondFactorCheck } from './second-factor-service.ts';

/**
 * Passkeys (WebAuthn, verified with @simplewebauthn/server) as a second factor. Each ceremony's
 * challenge lives in the ephemeral store under what it is bound to (the user for a registration,
 * the pending sign-in for an assertion) and is taken with GETDEL: one answer per challenge. The
 * relying party is the issuer: its host is the RP ID, its origin the only origin accepted.
 */
export interface PasskeyService {
  list(userId: string): Promise<StoredPasskey[]>;
  hasAny(userId: string): Promise<boolean>;
  /** Options for navigator.credentials.create (JSON), with a fresh challenge for this user. */
  registrationOptions(user: User): Promise<string>;
  /** Verifies the browser's answer to the latest options and stores the passkey. 400 when it does not verify. */
  register(user: User, response: string, name: string, actor: SecondFactorActor): Promise<StoredPasskey>;
  /** Options for navigator.credentials.get, bound to `binding` (the pending sign-in); null when the user has no passkey. */
  authenticationOptions(userId: string, binding: string): Promise<string | null>;
  /** Verifies an assertion against the challenge bound to `binding`; limited and audited as the other answers. */
  authenticate(user: User, response: string, binding: string, context: SecondFactorActor & { via: string }): Promise<SecondFactorCheck | { status: 'passed'; method: 'passkey' }>;
  remove(user: User, id: string, actor: SecondFactorActor, proof: 'password' | 'code'): Promise<void>;
}

export interface PasskeyServiceOptions {
  repository: PasskeyRepository;
  ephemeral: EphemeralStore;
  limiter: SecondFactorLimiter;
  audit: Pick<AuditLog, 'record' | 'recordInBackground'>;
  /** The issuer: its origin is expected in every answer, its host is the RP ID. */
  issuer: string;
  /** The name authenticators show. */
  rpName: string;
  challengeTtlSeconds: number;
}

const registrationKey = (userId: string) => `passkey:challenge:register:${userId}`;
const assertionKey = (binding: string) => `passkey:challenge:assert:${sha256Base64url(binding)}`;

function parseJson<T>(text: string): T | null {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' ? (value as T) : null;
  } catch {
    return null;
  }
}

export function createPasskeyService(options: PasskeyServiceOptions): PasskeyService {
  const { repository, ephemeral, limiter, audit } = options;
  const origin = new URL(options.issuer).origin;
  const rpID = new URL(options.issuer).hostname;
  const ttlMs = options.challengeTtlSeconds * 1000;
  const event = (user: User, action: string, actor: SecondFactorActor, details: Record<string, unknown>) =>
    audit.record({ actor: `user:${user.id}`, action, subject: `user:${user.id}`, ip: actor.ip, userAgent: actor.userAgent, details });

  return {
    list: (userId) => repository.listForUser(userId),

    async hasAny(userId) {
      return (await repository.listForUser(userId)).length > 0;
    },

    async registrationOptions(user) {
      const existing = await repository.listForUser(user.id);
      const creation = await generateRegistrationOptions({
        rpName: options.rpName,
        rpID,
        userName: user.username,
        userID: new TextEncoder().encode(user.id),
        attestationType: 'none',
        excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
      await ephemeral.set(registrationKey(user.id), creation.challenge, { ttlMs });
      return JSON.stringify(creation);
    },

    async register(user, text, name, actor) {
      const response = parseJson<RegistrationResponseJSON>(text);
      const expectedChallenge = await ephemeral.getDel(registrationKey(user.id));
      const refuse = (detail: string) => AppError.validation([{ field: 'passkey', code: 'not_verified', message: `The passkey could not be registered (${detail}). Try again.` }]);
      if (!response || !expectedChallenge) throw refuse(expectedChallenge ? 'no answer from the browser' : 'the page expired');
      const cleanName = name.trim().slice(0, 60) || 'Passkey';
      let verified;
      try {
        verified = await verifyRegistrationResponse({ response, expectedChallenge, expectedOrigin: origin, expectedRPID: rpID, requireUserVerification: false });
      } catch (error) {
        throw refuse((error as Error).message.slice(0, 120));
      }
      if (!verified.verified) throw refuse('it did not verify');
      const { credential } = verified.registrationInfo;
      const stored = await repository.insert({
        userId: user.id,
        credentialId: credential.id,
        publicKey: Buffer.from(credential.publicKey).toString('base64url'),
        signCount: credential.counter,
        transports: credential.transports ?? [],
        name: cleanName,
      });
      await event(user, 'second_factor.enrolled', actor, { method: 'passkey', name: stored.name, credential: stored.id });
      return stored;
    },

    async authenticationOptions(userId, binding) {
      const passkeys = await repository.listForUser(userId);
      if (passkeys.length === 0) return null;
      const request = await generateAuthenticationOptions({ rpID, allowCredentials: passkeys.map((p) => ({ id: p.credentialId, transports: p.transports as never })), userVerification: 'preferred' });
      await ephemeral.set(assertionKey(binding), request.challenge, { ttlMs });
      return JSON.stringify(request);
    },

    async authenticate(user, text, binding, { ip, userAgent, via }) {
      const record = (action: string, details: Record<string, unknown>) =>
        audit.recordInBackground({ actor: `user:${user.id}`, action, subject: `user:${user.id}`, ip, userAgent, details: { via, method: 'passkey', ...details } });
      const refusal = await limiter.check(user.id);
      if (refusal) {
        record('sign_in.second_factor.locked', { retryAfterSeconds: refusal.retryAfterSeconds, limit: refusal.limit });
        return { status: 'limited', ...refusal };
      }
      const response = parseJson<AuthenticationResponseJSON>(text);
      const expectedChallenge = await ephemeral.getDel(assertionKey(binding));
      const passkey = response && (await repository.listForUser(user.id)).find((p) => p.credentialId === response.id);
      let passed = false;
      if (response && expectedChallenge && passkey) {
        try {
          const verified = await verifyAuthenticationResponse({
            response,
            expectedChallenge,
            expectedOrigin: origin,
            expectedRPID: rpID,
            credential: { id: passkey.credentialId, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: passkey.signCount, transports: passkey.transports },
            requireUserVerification: false,
          });
          passed = verified.verified && (await repository.recordUse(passkey.id, verified.authenticationInfo.newCounter));
        } catch {
          passed = false;
        }
      }
      if (!passed) {
        await limiter.failed(user.id);
        record('sign_in.second_factor.failed', {});
        return { status: 'failed' };
      }
      await limiter.succeeded(user.id);
      record('sign_in.second_factor.succeeded', { credential: passkey!.id });
      return { status: 'passed', method: 'passkey' };
    },

    async remove(user, id, actor, proof) {
      const removed = /^[0-9a-f-]{36}$/.test(id) ? await repository.remove(user.id, id) : null;
      if (!removed) throw AppError.notFound('No such passkey of yours.');
      await event(user, 'second_factor.removed', actor, { method: 'passkey', name: removed.name, proof });
    },
  };
}
