// Personal access tokens (`tsr_pat_…`): long-lived credentials a user creates for scripts, with
// some of the user's allowed scopes and an expiry within the operator's limit. The value is
// returned once; the database keeps only its digest.
import { invalidationTarget, type InvalidationPublisher } from '../cache/invalidations.ts';
import type { Actor } from '../accounts/account-service.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { AppError } from '../shared/errors.ts';
import { parseInput } from '../shared/validation.ts';
import type { Database } from '../store/sql/database.ts';
import { createPersonalTokenRepository, type NewPersonalToken, type PersonalTokenRecord } from './personal-token-repository.ts';
import { tokenFormat } from '../credentials/token-format.ts';
import { createPersonalTokenSchema } from './personal-token-input.ts';
import { createTokenUseRecords, type FailedUseReason } from './token-use-records.ts';
import { anyCovers } from '../shared/path-scopes.ts';

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

export type { FailedUseReason } from './token-use-records.ts';

export interface PersonalTokenServiceOptions {
  database: Database;
  audit: AuditLog;
  /** The scope catalog: a token's scopes must be in it (and among the user's allowed scopes). */
  scopeCatalog: Record<string, string>;
  /** The catalog's path-scoped names (config.pathScopes). */
  pathScopes?: readonly string[];
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
  /** Told of each token ended before its time (revoked, rotated): the metrics. */
  onRevoked?: () => void;
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
  /**
   * Revokes the token of this value, whoever owns it, because it was found where others can read
   * it, and records `credential.leaked` (with `details`) in the same transaction. Null when the
   * value is no personal token Tessera issued (malformed ones are not looked up); 'already_revoked'
   * (nothing written) when it was revoked before.
   */
  revokeLeaked(value: string, by: Actor, details: Record<string, unknown>): Promise<{ outcome: 'revoked' | 'already_revoked'; tokenId: string; userId: string; name: string; hint: string } | null>;
  /**
   * Whether the token with this id is neither revoked nor expired (its owner is checked by the
   * caller): what a token obtained by exchanging it depends on (docs/token-exchange.md). No use is recorded.
   */
  isActive(tokenId: string): Promise<boolean>;
}

/** The lifetimes offered to people; any whole number of days up to the maximum is accepted. */
export const EXPIRY_CHOICES_DAYS: readonly number[] = [7, 30, 90, 365];
export const DEFAULT_TOKEN_SCOPES: readonly string[] = ['read'];

const DAY_MS = 86_400_000;

function assertWholeNumber(value: number, name: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be a whole number >= ${min}, got ${value}`);
}

export function createPersonalTokenService(options: PersonalTokenServiceOptions): PersonalTokenService {
  const { database, audit, scopeCatalog, pathScopes = [], allowNoExpiry = false, clock = Date.now } = options;
  const pathScoped = new Set(pathScopes);
  /** Whether the owner still holds the scope, or a path scope covering it (a token narrowed to a path). */
  const stillHeld = (allowed: readonly string[], scope: string) => allowed.includes(scope) || (pathScoped.size > 0 && anyCovers(allowed, scope, pathScoped));
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
  const { recordFailedUse, recordUse } = createTokenUseRecords({ audit, tokens, lastUsedIntervalMs, failedUseAuditsPerMinute });

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

  return {
    expiry: {
      choices: EXPIRY_CHOICES_DAYS.filter((days) => days <= maxExpiryDays),
      defaultDays: defaultExpiryDays,
      maxDays: maxExpiryDays,
      allowNoExpiry,
    },

    async create(user, input, by) {
      const valid = parseInput(createPersonalTokenSchema(user, { scopeCatalog, pathScopes, maxExpiryDays, allowNoExpiry }), {
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
      options.onRevoked?.();
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
          const scopes = old.scopes.filter((scope) => stillHeld(user.allowedScopes, scope));
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
      options.onRevoked?.();
      await options.invalidate?.(invalidationTarget.personalToken(tokenId));
      return { token: value, record: toPersonalToken(rotated.created, now) };
    },

    async revokeLeaked(value, by, details) {
      if (typeof value !== 'string' || tokenFormat.parse(value) !== 'personal_access_token') return null;
      const found = await tokens.findByDigest(tokenFormat.digest(value));
      if (!found) return null;
      const { token, owner } = found;
      const about = { tokenId: token.id, userId: owner.id, name: token.name, hint: token.hint };
      if (token.revokedAt !== null) return { outcome: 'already_revoked', ...about };
      const revoked = await database.transaction(async (tx) => {
        const ended = await tokens.revoke(token.id, owner.id, new Date(clock()), tx);
        if (ended) {
          await audit.record(
            { ...by, action: 'credential.leaked', subject: `token:${ended.id}`, details: { ...details, kind: 'personal_access_token', userId: owner.id, name: ended.name, hint: ended.hint } },
            tx,
          );
        }
        return ended;
      });
      // Revoked by someone else meanwhile: it is revoked all the same.
      if (!revoked) return { outcome: 'already_revoked', ...about };
      options.onRevoked?.();
      await options.invalidate?.(invalidationTarget.personalToken(revoked.id));
      return { outcome: 'revoked', ...about };
    },

    async isActive(tokenId) {
      const token = await tokens.findById(tokenId);
      return token !== null && token.revokedAt === null && !isExpired(token, clock());
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
      const scopes = token.scopes.filter((scope) => stillHeld(owner.allowedScopes, scope));
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
