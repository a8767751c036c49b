import { z } from 'zod';
import { invalidationTarget, type InvalidationPublisher } from '../cache/invalidations.ts';
import type { Actor } from '../accounts/account-service.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { AppError } from '../shared/errors.ts';
import { parseInput } from '../shared/validation.ts';
import type { Database } from '../store/sql/database.ts';
import { createPersonalTokenRepository, type NewPersonalToken, type PersonalTokenRecord } from './personal-token-repository.ts';
import { tokenFormat } from '../credentials/token-format.ts';

/**
 * Personal access tokens (`tsr_pat_…`): long-lived credentials a user creates for scripts, like
 * Zenodo's personal tokens or APTrust's API keys. Each carries some of the user's allowed scopes
 * and an expiry chosen within the operator's limit. The value is returned once, at creation or
 * rotation; the database keeps only its digest (see migrations/0005_personal_tokens.sql).
 */

/** A token as its owner sees it in a list: never the value, nor its digest. */
export interface PersonalToken {
  id: string;
  name: string;
  scopes: string[];
  /** The prefix and first random characters, e.g. "tsr_pat_Ab3x". */
  hint: string;
  createdAt: Date;
  /** Null: never expires. */
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  lastUsedIp: string | null;
  revoked: boolean;
  revokedAt: Date | null;
  /** Past its expiry by the service's clock (a revoked token may be expired too). */
  expired: boolean;
}

export interface CreatePersonalTokenInput {
  /** 1–100 characters, trimmed. */
  name: string;
  /** A non-empty subset of the user's allowed scopes; default ['read']. */
  scopes?: string[] | null;
  /**
   * Whole days, 1..maxExpiryDays (the settings page offers 7, 30, 90 and 365); null for no expiry,
   * only when the operator allows it; absent: defaultExpiryDays.
   */
  expiresInDays?: number | null;
}

/** A new token: `token` is the value, shown once and never stored. */
export interface CreatedPersonalToken {
  token: string;
  record: PersonalToken;
}

/** What a valid token grants. */
export interface VerifiedPersonalToken {
  tokenId: string;
  userId: string;
  username: string;
  /** The token's scopes that its owner still holds. */
  scopes: string[];
  expiresAt: Date | null;
  createdAt: Date;
}

/** Why a well-formed token was refused (in 'token.failed_use' audit events). */
export type FailedUseReason = 'unknown' | 'revoked' | 'expired' | 'owner_disabled' | 'no_scopes';

export interface PersonalTokenServiceOptions {
  database: Database;
  audit: AuditLog;
  /** The scope catalog: a token's scopes must be in it (and among the user's allowed scopes). */
  scopeCatalog: Record<string, string>;
  /** The longest lifetime a user may choose, in days (default 365). */
  maxExpiryDays?: number;
  /** The lifetime when the request names none (default 30, or maxExpiryDays when smaller). */
  defaultExpiryDays?: number;
  /** Whether a user may create a token that never expires (default false). */
  allowNoExpiry?: boolean;
  /** Milliseconds since the epoch; injected by tests. */
  clock?: () => number;
  /** A token's last use is written at most once per this many milliseconds (default 60 000). */
  lastUsedIntervalMs?: number;
  /**
   * 'token.failed_use' events written per minute at most, over all tokens (default 60); each
   * digest is recorded at most once a minute anyway. Events left out are counted in the next
   * one's details.suppressed.
   */
  failedUseAuditsPerMinute?: number;
  /** Told when a token ends (revoked, rotated), so that cached answers about it go everywhere. */
  invalidate?: InvalidationPublisher;
}

export interface PersonalTokenService {
  /** The lifetimes the settings page may offer. */
  readonly expiry: { choices: number[]; defaultDays: number; maxDays: number; allowNoExpiry: boolean };
  create(user: User, input: CreatePersonalTokenInput, by: Actor): Promise<CreatedPersonalToken>;
  /** Every token of the user, newest first, revoked and expired ones flagged. */
  list(userId: string): Promise<PersonalToken[]>;
  /** 404 when the token is not the user's or is already revoked. */
  revoke(userId: string, tokenId: string, by: Actor): Promise<PersonalToken>;
  /**
   * A new value with the same name, scopes (those the user still holds) and lifetime length; the
   * old token is revoked in the same transaction. 404 when not the user's, revoked or expired.
   */
  rotate(user: User, tokenId: string, by: Actor): Promise<CreatedPersonalToken>;
  /**
   * What a presented value grants, or null. A value that is not a well-formed personal access
   * token (wrong prefix, mistyped: the checksum fails) is refused without touching the database.
   */
  verify(value: string, context: { ip: string | null }): Promise<VerifiedPersonalToken | null>;
}

/** The lifetimes offered to people; any whole number of days up to the maximum is accepted. */
export const EXPIRY_CHOICES_DAYS: readonly number[] = [7, 30, 90, 365];
export const DEFAULT_TOKEN_SCOPES: readonly string[] = ['read'];
export const MAX_TOKEN_NAME_LENGTH = 100;

const DAY_MS = 86_400_000;
/** Each digest's failed uses are audited at most once per this interval. */
const FAILED_USE_AUDIT_INTERVAL_MS = 60_000;
/** Keys remembered by each in-process throttle; the oldest are forgotten beyond this. */
const MAX_THROTTLE_KEYS = 10_000;

/**
 * Remembers when something was last done for each key, so that it is done at most once per
 * interval. Bounded: entries are kept in time order (a key is re-inserted when taken), so the
 * stale ones and, when still full, the oldest are dropped from the front.
 */
function createThrottle(intervalMs: number) {
  const last = new Map<string, number>();
  return {
    /** True, and remembered, when the key was not taken within the interval before `now`. */
    take(key: string, now: number): boolean {
      const previous = last.get(key);
      if (previous !== undefined && now - previous < intervalMs) return false;
      last.delete(key);
      for (const [oldKey, at] of last) {
        if (now - at < intervalMs && last.size < MAX_THROTTLE_KEYS) break;
        last.delete(oldKey);
      }
      last.set(key, now);
      return true;
    },
    /** Forgets a key (its action failed and should be retried). */
    forget(key: string): void {
      last.delete(key);
    },
  };
}

function assertWholeNumber(value: number, name: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be a whole number >= ${min}, got ${value}`);
}

export function createPersonalTokenService(options: PersonalTokenServiceOptions): PersonalTokenService {
  const { database, audit, scopeCatalog, allowNoExpiry = false, clock = Date.now } = options;
  const maxExpiryDays = options.maxExpiryDays ?? 365;
  const defaultExpiryDays = options.defaultExpiryDays ?? Math.min(30, maxExpiryDays);
  const lastUsedIntervalMs = options.lastUsedIntervalMs ?? 60_000;
  const failedUseAuditsPerMinute = options.failedUseAuditsPerMinute ?? 60;
  assertWholeNumber(maxExpiryDays, 'maxExpiryDays', 1);
  assertWholeNumber(defaultExpiryDays, 'defaultExpiryDays', 1);
  if (defaultExpiryDays > maxExpiryDays) throw new RangeError(`defaultExpiryDays (${defaultExpiryDays}) must not exceed maxExpiryDays (${maxExpiryDays})`);
  assertWholeNumber(lastUsedIntervalMs, 'lastUsedIntervalMs', 0);
  assertWholeNumber(failedUseAuditsPerMinute, 'failedUseAuditsPerMinute', 1);

  const tokens = createPersonalTokenRepository(database);
  const lastUseWrites = createThrottle(lastUsedIntervalMs);
  const failedUseAudits = createThrottle(FAILED_USE_AUDIT_INTERVAL_MS);
  /** A fixed one-minute window over every failed-use audit write. */
  const failedUseWindow = { start: Number.NEGATIVE_INFINITY, written: 0, suppressed: 0 };

  const isExpired = (token: PersonalTokenRecord, now: number) => token.expiresAt !== null && token.expiresAt.getTime() <= now;

  function toPersonalToken(token: PersonalTokenRecord, now: number): PersonalToken {
    return {
      id: token.id,
      name: token.name,
      scopes: token.scopes,
      hint: token.hint,
      createdAt: token.createdAt,
      expiresAt: token.expiresAt,
      lastUsedAt: token.lastUsedAt,
      lastUsedIp: token.lastUsedIp,
      revoked: token.revokedAt !== null,
      revokedAt: token.revokedAt,
      expired: isExpired(token, now),
    };
  }

  /** A fresh value and the row that stands for it. */
  function issue(fields: Omit<NewPersonalToken, 'digest' | 'hint'>): { value: string; row: NewPersonalToken } {
    const value = tokenFormat.generate('personal_access_token');
    return { value, row: { ...fields, digest: tokenFormat.digest(value), hint: tokenFormat.hint(value) } };
  }

  function createSchema(user: User) {
    return z
      .object({
        name: z
          .string({ message: 'must be a string' })
          .trim()
          .min(1, { message: 'must not be empty' })
          .max(MAX_TOKEN_NAME_LENGTH, { message: `must be at most ${MAX_TOKEN_NAME_LENGTH} characters` })
          .regex(/^[^\p{Cc}]*$/u, { message: 'must not contain control characters' }),
        scopes: z
          .array(z.string())
          .min(1, { message: 'must name at least one scope' })
          .superRefine((scopes, context) => {
            scopes.forEach((scope, index) => {
              if (!Object.hasOwn(scopeCatalog, scope)) {
                context.addIssue({ code: 'custom', path: [index], message: `unknown scope "${scope}"` });
              } else if (!user.allowedScopes.includes(scope)) {
                context.addIssue({
                  code: 'custom',
                  path: [index],
                  message: `scope "${scope}" is not one of your allowed scopes (${user.allowedScopes.join(', ') || 'none'})`,
                });
              }
            });
          })
          .transform((scopes) => [...new Set(scopes)]),
        expiresInDays: z
          .number({ message: `must be a number of days (1–${maxExpiryDays})${allowNoExpiry ? ' or null for no expiry' : ''}` })
          .int({ message: 'must be a whole number of days' })
          .min(1, { message: 'must be at least 1 day' })
          .max(maxExpiryDays, { message: `must be at most ${maxExpiryDays} days` })
          .nullable()
          .superRefine((days, context) => {
            if (days === null && !allowNoExpiry) context.addIssue({ code: 'custom', message: `tokens must expire: choose 1–${maxExpiryDays} days` });
          }),
      });
  }

  async function recordFailedUse(digest: string, value: string, reason: FailedUseReason, token: PersonalTokenRecord | null, ip: string | null, now: number) {
    if (!failedUseAudits.take(digest, now)) return;
    if (now - failedUseWindow.start >= 60_000) {
      failedUseWindow.start = now;
      failedUseWindow.written = 0;
    }
    if (failedUseWindow.written >= failedUseAuditsPerMinute) {
      failedUseWindow.suppressed++;
      return;
    }
    failedUseWindow.written++;
    const suppressed = failedUseWindow.suppressed;
    failedUseWindow.suppressed = 0;
    await audit.record({
      actor: ip ? `ip:${ip}` : 'anonymous',
      action: 'token.failed_use',
      subject: token ? `token:${token.id}` : null,
      ip,
      details: {
        hint: tokenFormat.hint(value),
        reason,
        ...(token ? { userId: token.userId } : {}),
        ...(suppressed > 0 ? { suppressed } : {}),
      },
    });
  }

  async function recordUse(token: PersonalTokenRecord, ip: string | null, now: number) {
    const recentlyWritten = token.lastUsedAt !== null && now - token.lastUsedAt.getTime() < lastUsedIntervalMs;
    if (recentlyWritten || !lastUseWrites.take(token.id, now)) return;
    try {
      await tokens.touchLastUsed(token.id, new Date(now), ip);
    } catch (error) {
      lastUseWrites.forget(token.id);
      throw error;
    }
  }

  return {
    expiry: {
      choices: EXPIRY_CHOICES_DAYS.filter((days) => days <= maxExpiryDays),
      defaultDays: defaultExpiryDays,
      maxDays: maxExpiryDays,
      allowNoExpiry,
    },

    async create(user, input, by) {
      const valid = parseInput(createSchema(user), {
        name: input.name,
        scopes: input.scopes ?? DEFAULT_TOKEN_SCOPES,
        expiresInDays: input.expiresInDays === undefined ? defaultExpiryDays : input.expiresInDays,
      });
      const now = clock();
      const { value, row } = issue({
        userId: user.id,
        name: valid.name,
        scopes: valid.scopes,
        createdAt: new Date(now),
        expiresAt: valid.expiresInDays === null ? null : new Date(now + valid.expiresInDays * DAY_MS),
      });
      const record = await database.transaction(async (tx) => {
        const created = await tokens.insert(row, tx);
        await audit.record(
          {
            ...by,
            action: 'token.created',
            subject: `token:${created.id}`,
            details: { userId: user.id, name: created.name, hint: created.hint, scopes: created.scopes, expiresAt: created.expiresAt?.toISOString() ?? null },
          },
          tx,
        );
        return created;
      });
      return { token: value, record: toPersonalToken(record, now) };
    },

    async list(userId) {
      const now = clock();
      return (await tokens.listForUser(userId)).map((token) => toPersonalToken(token, now));
    },

    async revoke(userId, tokenId, by) {
      const now = clock();
      const revoked = await database.transaction(async (tx) => {
        const token = await tokens.revoke(tokenId, userId, new Date(now), tx);
        if (token) {
          await audit.record({ ...by, action: 'token.revoked', subject: `token:${token.id}`, details: { userId, name: token.name, hint: token.hint } }, tx);
        }
        return token;
      });
      if (!revoked) throw AppError.notFound('No such active token.');
      await options.invalidate?.(invalidationTarget.personalToken(revoked.id));
      return toPersonalToken(revoked, now);
    },

    async rotate(user, tokenId, by) {
      const now = clock();
      let value = '';
      const rotated = await tokens.rotate(
        tokenId,
        user.id,
        new Date(now),
        (old) => {
          const scopes = old.scopes.filter((scope) => user.allowedScopes.includes(scope));
          // Thrown inside the transaction: the old token stays as it was.
          if (scopes.length === 0) throw AppError.conflict("None of this token's scopes is among your allowed scopes any more: create a new token instead.");
          const issued = issue({
            userId: user.id,
            name: old.name,
            scopes,
            createdAt: new Date(now),
            expiresAt: old.expiresAt === null ? null : new Date(now + (old.expiresAt.getTime() - old.createdAt.getTime())),
          });
          value = issued.value;
          return issued.row;
        },
        (tx, { revoked, created }) =>
          audit.record(
            {
              ...by,
              action: 'token.rotated',
              subject: `token:${revoked.id}`,
              details: {
                userId: user.id,
                name: created.name,
                hint: revoked.hint,
                newTokenId: created.id,
                newHint: created.hint,
                scopes: created.scopes,
                expiresAt: created.expiresAt?.toISOString() ?? null,
              },
            },
            tx,
          ),
      );
      if (!rotated) throw AppError.notFound('No such active token.');
      await options.invalidate?.(invalidationTarget.personalToken(tokenId));
      return { token: value, record: toPersonalToken(rotated.created, now) };
    },

    async verify(value, { ip }) {
      if (typeof value !== 'string' || tokenFormat.parse(value) !== 'personal_access_token') return null;
      const digest = tokenFormat.digest(value);
      const found = await tokens.findByDigest(digest);
      const now = clock();
      if (!found) {
        await recordFailedUse(digest, value, 'unknown', null, ip, now);
        return null;
      }
      const { token, owner } = found;
      const scopes = token.scopes.filter((scope) => owner.allowedScopes.includes(scope));
      const refusal: FailedUseReason | null =
        token.revokedAt !== null ? 'revoked'
        : isExpired(token, now) ? 'expired'
        : owner.disabled ? 'owner_disabled'
        : scopes.length === 0 ? 'no_scopes'
        : null;
      if (refusal) {
        await recordFailedUse(digest, value, refusal, token, ip, now);
        return null;
      }
      await recordUse(token, ip, now);
      return { tokenId: token.id, userId: owner.id, username: owner.username, scopes, expiresAt: token.expiresAt, createdAt: token.createdAt };
    },
  };
}
