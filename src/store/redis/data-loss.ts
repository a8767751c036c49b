// Finds data that Redis lost without a disconnect (a FLUSHALL, an eviction, a server restored from
// an older snapshot behind the same address, a replica promoted without the master's last writes),
// which the connection's events never tell: whatever a node cached from Redis must then go.
// Checked by the heartbeat, on the commands connection; on a cluster, one marker per master.
import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { CLUSTER_SLOTS, slotOfKey } from './cluster-slots.ts';
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

/** A Tessera node's id in its markers' keys and values: random, one per store. */
export function markerNodeId(): string {
  return randomBytes(9).toString('base64url');
}

/** The marker on one Redis (or, with a hash tag, on the cluster master serving the tag's slot). */
export function createDataLossDetector(context: RedisContext, scripted: ScriptedCommands, keyPrefix: string, onLost: (reason: string) => void, node = markerNodeId(), tag?: string): DataLossDetector {
  const key = `${keyPrefix}${MARKER_KEY_PREFIX}${tag === undefined ? '' : `{${tag}}:`}${node}`;
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
        reason = previous === null ? 'its data is gone (FLUSHALL, FLUSHDB, a restart without persistence, or a failover to a replica behind its master)' : 'it holds older data (restored from an older snapshot, or a replica promoted behind its master)';
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

/**
 * One marker per master of a cluster: each in a slot that master serves (a hash tag found for
 * it), so each master's data loss is seen, including a failover to a replica that missed writes
 * (the marker's slot then belongs to the promoted replica, and keeps its detector). The slot map
 * is read again at every check: a master that appears gets a marker of its own.
 */
export function createClusterDataLossDetector(context: RedisContext, cluster: Cluster, scripted: ScriptedCommands, keyPrefix: string, onLost: (reason: string) => void): DataLossDetector {
  const node = markerNodeId();
  const detectors = new Map<number, DataLossDetector>(); // by the slot of the marker's tag
  let nextTag = 0;

  function coverMasters(): void {
    const masterOfSlot = (slot: number) => cluster.slots[slot]?.[0];
    const covered = new Set([...detectors.keys()].map(masterOfSlot));
    const uncovered = new Set<string>();
    for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
      const master = masterOfSlot(slot);
      if (master !== undefined && !covered.has(master)) uncovered.add(master);
    }
    // A tag per uncovered master: the first of marker-N whose slot it serves (a few tries each).
    for (let tries = 0; uncovered.size > 0 && tries < 100_000; tries++) {
      const tag = `marker-${nextTag++}`;
      const slot = slotOfKey(tag);
      const master = masterOfSlot(slot);
      if (master === undefined || !uncovered.has(master) || detectors.has(slot)) continue;
      uncovered.delete(master);
      detectors.set(slot, createDataLossDetector(context, scripted, keyPrefix, onLost, node, tag));
    }
  }

  return {
    async check() {
      coverMasters();
      const results = await Promise.allSettled([...detectors.values()].map((detector) => detector.check()));
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}
