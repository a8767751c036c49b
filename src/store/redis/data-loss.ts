// Finds data that Redis lost without a disconnect (a FLUSHALL, an eviction, a server restored from
// an older snapshot behind the same address), which the connection's events never tell: whatever
// a node cached from Redis must then go. Checked by the heartbeat, on the commands connection.
import { randomBytes } from 'node:crypto';
import type { RedisContext } from './connection.ts';
import type { ScriptedCommands } from './lua-scripts.ts';

export interface DataLossDetector {
  /**
   * Reads and advances this node's marker; calls onLost when the marker is not what this node
   * last wrote, or Redis evicted keys since the last check. A refusal of the script (Redis out of
   * memory under noeviction) decides nothing; a lost connection rejects, for the heartbeat.
   */
  check(): Promise<void>;
}

/** Where each node's marker is kept, under the store's key prefix. */
export const MARKER_KEY_PREFIX = 'tessera:marker:';

/** The marker outlives many missed checks; a node that is gone leaves it to expire. */
const MARKER_TTL_MS = 10 * 60 * 1000;

export function createDataLossDetector(context: RedisContext, scripted: ScriptedCommands, keyPrefix: string, onLost: (reason: string) => void): DataLossDetector {
  const node = randomBytes(9).toString('base64url');
  const key = `${keyPrefix}${MARKER_KEY_PREFIX}${node}`;
  let sequence = 0;
  /** What the marker holds as far as this node knows (null before the first check). */
  let expected: string | null = null;
  /** A value written by a check whose answer was lost: the marker may hold it too. */
  let unconfirmed: string | null = null;
  let evicted: number | null = null;
  let refusalReported = false;

  return {
    async check() {
      const next = `${node}:${++sequence}`;
      let answer: [string | null, string];
      try {
        answer = await scripted.tesseraMarker(key, next, String(MARKER_TTL_MS));
      } catch (error) {
        if ((error as { name?: unknown } | null)?.name !== 'ReplyError') {
          unconfirmed = next;
          throw error;
        }
        if (!refusalReported) context.logger.warn({ redis: context.server, reason: (error as Error).message }, 'Redis refused the data-loss check; lost data may go unnoticed');
        refusalReported = true;
        return;
      }
      refusalReported = false;
      const [previous, evictedText] = answer;
      const evictedNow = Number(evictedText);
      let reason: string | null = null;
      if (expected !== null && previous !== expected && (unconfirmed === null || previous !== unconfirmed)) {
        reason = previous === null ? 'its data is gone (FLUSHALL, FLUSHDB, or a restart without persistence)' : 'it holds older data (restored from an older snapshot)';
      } else if (evicted !== null && evictedNow > evicted) {
        reason = `it evicted ${evictedNow - evicted} keys (maxmemory)`;
      }
      expected = next;
      unconfirmed = null;
      evicted = evictedNow;
      if (reason) onLost(reason);
    },
  };
}
