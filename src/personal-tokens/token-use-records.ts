// What a presented personal token leaves behind: its last use on the row, at most once per
// interval, and failed uses in the audit log, throttled so that a flood cannot fill it.
import type { AuditLog } from '../audit/audit-log.ts';
import { tokenFormat } from '../credentials/token-format.ts';
import type { PersonalTokenRecord, PersonalTokenRepository } from './personal-token-repository.ts';

/** Why a well-formed token was refused (in 'token.failed_use' audit events). */
export type FailedUseReason = 'unknown' | 'revoked' | 'expired' | 'owner_disabled' | 'no_scopes';

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

export interface TokenUseRecordsOptions {
  audit: AuditLog;
  tokens: PersonalTokenRepository;
  /** A token's last use is written at most once per this many milliseconds. */
  lastUsedIntervalMs: number;
  /** 'token.failed_use' events per minute at most, over all tokens; the rest are counted in the next. */
  failedUseAuditsPerMinute: number;
}

export function createTokenUseRecords({ audit, tokens, lastUsedIntervalMs, failedUseAuditsPerMinute }: TokenUseRecordsOptions) {
  const lastUseWrites = createThrottle(lastUsedIntervalMs);
  const failedUseAudits = createThrottle(FAILED_USE_AUDIT_INTERVAL_MS);
  /** A fixed one-minute window over every failed-use audit write. */
  const failedUseWindow = { start: Number.NEGATIVE_INFINITY, written: 0, suppressed: 0 };

  return {
    async recordFailedUse(digest: string, value: string, reason: FailedUseReason, token: PersonalTokenRecord | null, ip: string | null, now: number) {
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
    },

    async recordUse(token: PersonalTokenRecord, ip: string | null, now: number) {
      const recentlyWritten = token.lastUsedAt !== null && now - token.lastUsedAt.getTime() < lastUsedIntervalMs;
      if (recentlyWritten || !lastUseWrites.take(token.id, now)) return;
      try {
        await tokens.touchLastUsed(token.id, new Date(now), ip);
      } catch (error) {
        lastUseWrites.forget(token.id);
        throw error;
      }
    },
  };
}
